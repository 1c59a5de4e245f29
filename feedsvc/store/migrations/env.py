"""Alembic environment for feedsvc's store. Run only through feedsvc.store.migrator, which
hands over a connection already inside the transaction that holds the schema lock."""

from __future__ import annotations

from alembic import context

from feedsvc.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("feedsvc's migrations run through `feedsvc migrate` (or Store.migrate()), "
                       "which passes the connection")
# the caller's transaction is the migration's: alembic commits nothing itself
context.configure(connection=connection, target_metadata=metadata,
                  transaction_per_migration=False, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
