"""The Alembic environment (env.py, script.py.mako, versions/): ships inside the package, so a
deployed image migrates with `appeals db upgrade` and no alembic.ini (core/db/migrate.py)."""
