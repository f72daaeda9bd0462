from core.db.engine import make_engine, read_scope, session_scope

__all__ = ["make_engine", "read_scope", "session_scope"]
