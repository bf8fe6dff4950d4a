"""SQL backend (SQLite, PostgreSQL) on SQLAlchemy Core, schema managed by Alembic."""
