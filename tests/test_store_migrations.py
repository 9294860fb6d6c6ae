"""The Alembic migrations build exactly the schema that the table models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from costwarden.store import Store
from costwarden.store.db import current_revision, head_revision
from costwarden.store.tables import Base


def _drift(store: Store) -> list[tuple[object, ...]]:
    """Return the differences autogenerate finds between the migrated database and the models,
    leaving out type details that the dialects render differently."""
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        found = compare_metadata(context, Base.metadata)
    return [item for item in found if not isinstance(item, list)]


def test_migrations_match_models(store: Store) -> None:
    assert current_revision(store.engine) == head_revision()
    assert _drift(store) == []
