"""Opening the database, applying migrations, and upserting cost facts."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from platformdirs import user_data_dir
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from costwarden.domain.cost import ClusterInfo, CostRecord, NamespaceInfo, ProjectInfo
from costwarden.errors import StoreError
from costwarden.store.tables import Cluster, CostFact, Namespace, Project

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def default_database_url() -> str:
    """Return the SQLite file in the user data directory, creating the directory."""
    directory = Path(user_data_dir("costwarden", appauthor=False))
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'costwarden.db'}"


def _enable_sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _enable_sqlite_wal(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def create_store_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
    sqlite_wal: bool = False,
) -> Engine:
    """Create the engine; the pool options apply to server databases, ``sqlite_wal`` to SQLite.

    WAL journal mode lets readers (the service's API) work while a pass writes.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, future=True)
        event.listen(engine, "connect", _enable_sqlite_pragmas)
        if sqlite_wal and ":memory:" not in url and url.rstrip("/") not in ("sqlite:", "sqlite:/"):
            event.listen(engine, "connect", _enable_sqlite_wal)
        return engine
    return create_engine(
        url,
        future=True,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
    )


def upgrade(engine: Engine) -> None:
    """Apply every Alembic migration that the database does not have yet."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


class Store:
    """The database behind one costwarden process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        migrate: bool = True,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout: float = 30.0,
        sqlite_wal: bool = False,
    ) -> Store:
        """Open the database at ``url`` (default: the user data directory) and migrate it.

        The pool options size the connection pool of a PostgreSQL database; ``sqlite_wal`` puts
        a SQLite file in WAL journal mode.
        """
        url = url or default_database_url()
        try:
            engine = create_store_engine(
                url,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout,
                sqlite_wal=sqlite_wal,
            )
            if migrate:
                upgrade(engine)
        except SQLAlchemyError as exc:
            safe_url = url.split("@")[-1]
            raise StoreError(
                f"cannot open database {safe_url}: {exc.__class__.__name__}: {exc.args[0]}; "
                "check --database-url or COSTWARDEN_DATABASE_URL"
            ) from exc
        except ImportError as exc:
            scheme = url.split(":", 1)[0]
            raise StoreError(
                f"no database driver for {scheme!r} URLs ({exc.name} is not installed); costwarden "
                "supports sqlite:/// and postgresql+psycopg:// URLs"
            ) from exc
        logger.debug("opened database %s", engine.url.render_as_string(hide_password=True))
        return cls(engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session whose work is committed at the end, or rolled back on any error."""
        session = self._sessions()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()


def _fact_values(record: CostRecord, batch_id: str, now: datetime) -> dict[str, object]:
    return {
        "fact_key": record.natural_key(),
        "source": record.source,
        "grain": record.grain,
        "day": record.day,
        "period_start": record.period_start,
        "period_end": record.period_end,
        "amount": record.amount,
        "currency": record.currency,
        "cloud": record.cloud,
        "project_uid": record.project_uid,
        "project_name": record.project_name,
        "cluster_uid": record.cluster_uid,
        "cluster_name": record.cluster_name,
        "namespace": record.namespace,
        "account_id": record.account_id,
        "service": record.service,
        "resource_id": record.resource_id,
        "region": record.region,
        "breakdown": {key: format(value, "f") for key, value in record.breakdown.items()},
        "tags": dict(record.tags),
        "batch_id": batch_id,
        "updated_at": now,
    }


_COMPARED = ("amount", "currency", "cluster_name", "project_name", "breakdown", "tags", "namespace")


def upsert_facts(
    session: Session, records: Iterable[CostRecord], batch_id: str, chunk_size: int = 2000
) -> UpsertCounts:
    """Insert new facts and update changed ones, matching on the natural key.

    Runs inside the caller's transaction. Facts whose stored values are equal are left untouched,
    so re-ingesting the same window reports every fact as unchanged.
    """
    now = datetime.now(UTC)
    counts = UpsertCounts()
    chunk: list[dict[str, object]] = []
    for record in records:
        chunk.append(_fact_values(record, batch_id, now))
        if len(chunk) >= chunk_size:
            counts += _upsert_chunk(session, chunk)
            chunk = []
    if chunk:
        counts += _upsert_chunk(session, chunk)
    return counts


def _upsert_chunk(session: Session, rows: list[dict[str, object]]) -> UpsertCounts:
    unique: dict[str, dict[str, object]] = {}
    for row in rows:
        unique[str(row["fact_key"])] = row

    existing = {
        fact.fact_key: fact
        for fact in session.scalars(select(CostFact).where(CostFact.fact_key.in_(unique)))
    }

    inserted = updated = unchanged = 0
    new_rows = []
    for key, row in unique.items():
        fact = existing.get(key)
        if fact is None:
            new_rows.append(row)
            inserted += 1
            continue
        if _same(fact, row):
            unchanged += 1
            continue
        for name, value in row.items():
            setattr(fact, name, value)
        updated += 1

    if new_rows:
        session.execute(CostFact.__table__.insert(), new_rows)
    session.flush()
    return UpsertCounts(inserted, updated, unchanged)


def _same(fact: CostFact, row: dict[str, object]) -> bool:
    for name in _COMPARED:
        stored = getattr(fact, name)
        incoming = row[name]
        if name == "amount":
            if Decimal(stored) != Decimal(str(incoming)):
                return False
        elif stored != incoming:
            return False
    return True


def upsert_fleet(
    session: Session,
    projects: Iterable[ProjectInfo] = (),
    clusters: Iterable[ClusterInfo] = (),
    namespaces: Iterable[NamespaceInfo] = (),
) -> None:
    """Insert or update fleet metadata inside the caller's transaction."""
    now = datetime.now(UTC)
    for project in projects:
        session.merge(Project(uid=project.uid, name=project.name, updated_at=now))
    for cluster in clusters:
        session.merge(
            Cluster(
                uid=cluster.uid,
                name=cluster.name,
                project_uid=cluster.project_uid,
                project_name=cluster.project_name,
                cloud=cluster.cloud,
                region=cluster.region,
                labels=dict(cluster.labels),
                profiles=list(cluster.profiles),
                cloud_config_uid=cluster.cloud_config_uid,
                state=cluster.state,
                created_at=cluster.created_at,
                updated_at=now,
            )
        )
    for namespace in namespaces:
        session.merge(
            Namespace(
                cluster_uid=namespace.cluster_uid,
                name=namespace.name,
                labels=dict(namespace.labels),
                updated_at=now,
            )
        )
    session.flush()


def current_revision(engine: Engine) -> str | None:
    """Return the Alembic revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """Return the newest Alembic revision that this version of costwarden ships."""
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()
