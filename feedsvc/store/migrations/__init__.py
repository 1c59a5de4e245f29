"""Alembic migrations of the store's schema, shipped in the package and run by
`Store.migrate()` (no alembic.ini). Revision ids are plain strings: 0001, 0002, ..."""
