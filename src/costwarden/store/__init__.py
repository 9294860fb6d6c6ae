"""Persistence: SQLAlchemy tables, Alembic migrations, and queries. SQLite by default."""

from costwarden.store.db import Store, UpsertCounts, default_database_url, upsert_facts, upsert_fleet

__all__ = ["Store", "UpsertCounts", "default_database_url", "upsert_facts", "upsert_fleet"]
