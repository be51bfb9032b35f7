"""Storage: SQLAlchemy Core tables, Alembic migrations, and repositories returning domain values."""
