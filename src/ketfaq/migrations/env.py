"""Alembic environment: migrations run on the connection ketfaq hands over (storage._upgrade)."""

from alembic import context

from ketfaq.storage import METADATA

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=METADATA, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
