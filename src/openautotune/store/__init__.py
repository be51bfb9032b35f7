"""Storage: SQLAlchemy Core tables (one module per table group), Alembic migrations, the
`Database` handle, and functions that take a `Connection` and return domain values (autotunes, keys,
audit, ingestion rows, attribution SQL, update records, contextual units and policies).

It imports `domain` only: it is handed a database, never settings, and knows nothing of the layers
above it.
"""
