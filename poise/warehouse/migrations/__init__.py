"""Alembic migrations of the warehouse schema (run with `poise.warehouse.migrate.upgrade`)."""
