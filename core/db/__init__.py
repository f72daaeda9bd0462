from core.db.engine import create_tables, make_engine, read_scope, session_scope

__all__ = ["create_tables", "make_engine", "read_scope", "session_scope"]
