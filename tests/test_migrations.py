"""The Alembic revisions build exactly the schema ``db.create_all()`` builds, on
every engine."""

from __future__ import annotations

import typing as t
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from flask_jwt_authentication.migrations import BRANCH
from flask_jwt_authentication.migrations import VERSIONS
from flask_jwt_authentication.models import build_tables

ENV_PY = """
from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
"""


def ours() -> sa.MetaData:
    metadata = sa.MetaData()
    build_tables(metadata)
    return metadata


def snapshot(connection: sa.Connection) -> dict[str, t.Any]:
    """What the database says about the extension's tables."""
    inspector = sa.inspect(connection)
    result: dict[str, t.Any] = {}
    for name in sorted(ours().tables):
        result[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"])
                for c in inspector.get_columns(name)
            ],
            "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign_keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(name)
                if not i["name"].endswith("_fkey")
            ),
        }
    return result


def clean(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        ours().drop_all(connection)
        connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))


def alembic_config(tmp_path: Path, connection: sa.Connection) -> Config:
    (tmp_path / "env.py").write_text(ENV_PY)
    config = Config()
    config.set_main_option("script_location", str(tmp_path))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", VERSIONS)
    config.attributes["connection"] = connection
    return config


def test_upgrade_gives_the_schema_of_create_all(database_url: str, tmp_path: Path):
    engine = sa.create_engine(database_url)
    try:
        clean(engine)
        with engine.begin() as connection:
            command.upgrade(alembic_config(tmp_path, connection), f"{BRANCH}@head")
        with engine.connect() as connection:
            migrated = snapshot(connection)
        with engine.begin() as connection:
            command.downgrade(alembic_config(tmp_path, connection), f"{BRANCH}@base")
        with engine.connect() as connection:
            left = set(sa.inspect(connection).get_table_names()) & set(ours().tables)
        assert left == set(), "downgrade leaves no table behind"
        clean(engine)
        with engine.begin() as connection:
            ours().create_all(connection)
        with engine.connect() as connection:
            created = snapshot(connection)
        assert migrated == created
        if engine.dialect.name == "postgresql":
            # A native UUID column where the engine has one.
            session_id = migrated["jwt_auth_sessions"]["columns"][0]
            assert session_id[:2] == ("id", "UUID")
    finally:
        clean(engine)
        engine.dispose()


def test_every_hot_lookup_is_indexed():
    """The queries of the request path and of cleanup find their rows by index."""
    metadata = ours()
    indexed = {
        (table.name, tuple(c.name for c in index.columns))
        for table in metadata.tables.values()
        for index in table.indexes
    } | {
        (table.name, tuple(c.name for c in table.primary_key.columns))
        for table in metadata.tables.values()
    }
    for lookup in [
        ("jwt_auth_sessions", ("id",)),  # revocation check, every request
        ("jwt_auth_revoked_tokens", ("jti",)),  # revocation check, every request
        ("jwt_auth_refresh_tokens", ("token_hash",)),  # refresh
        ("jwt_auth_refresh_tokens", ("parent_hash",)),  # grace window
        ("jwt_auth_refresh_tokens", ("session_id",)),  # cleanup, cascade
        ("jwt_auth_sessions", ("user_id",)),  # list and end a user's sessions
        ("jwt_auth_sessions", ("expires_at",)),  # cleanup
        ("jwt_auth_revoked_tokens", ("expires_at",)),  # cleanup
        ("jwt_auth_keys", ("state",)),  # key reload
    ]:
        assert lookup in indexed, lookup
