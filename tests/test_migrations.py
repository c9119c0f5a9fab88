"""The extension's tables with Flask-Migrate, as docs/deployment.rst shows it.

The tables are on the application's ``db.metadata``, so the application's own
``flask db migrate`` writes them into the application's revisions and, after an
upgrade of the extension, writes the change: on every engine, with nothing
written into the package. tests/test_packaging.py runs the same scenario with
the built wheel installed in a fresh virtual environment.
"""

from __future__ import annotations

import hashlib
import shutil
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_doc_examples import Step
from test_doc_examples import Transcript
from test_doc_examples import read_steps
from test_doc_examples import shell_env

from flask_jwt_authentication.models import build_tables

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "flask_jwt_authentication"
MIGRATIONS_APP = ROOT / "docs" / "examples" / "migrations_app.py"
EXAMPLES = ROOT / "docs" / "examples"
#: The column (with its index) that the next version of the extension adds in
#: the scenario.
NEW_COLUMN = "device_label"
#: The last column of the sessions table today, after which it comes.
ANCHOR = 'sa.Column("user_agent", sa.String(255), nullable=True),\n'
SESSIONS = "jwt_auth_sessions"


def ours() -> sa.MetaData:
    metadata = sa.MetaData()
    build_tables(metadata)
    return metadata


def changed_models(text: str) -> str:
    """``models.py`` of a later version: the sessions table has one more column,
    indexed."""
    assert ANCHOR in text, "models.py changed: adapt ANCHOR"
    column = f'sa.Column("{NEW_COLUMN}", sa.String(64), nullable=True, index=True),\n'
    return text.replace(ANCHOR, ANCHOR + " " * 8 + column)


def snapshot(engine: sa.Engine) -> dict[str, t.Any]:
    """What the database says about the extension's tables."""
    inspector = sa.inspect(engine)
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


def wipe(engine: sa.Engine) -> None:
    """Drop every table of the database (the test databases only)."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)


def tree_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (compiled bytecode aside)."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(
            path.read_bytes()
        ).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def revisions(project: Path) -> list[Path]:
    return sorted((project / "migrations" / "versions").glob("*.py"))


def migration_scenario(
    project: Path,
    env: dict[str, str],
    database_url: str,
    upgrade_extension: t.Callable[[], dict[str, str]],
    installed: list[Path],
) -> None:
    """docs/examples/migrations.console in ``project`` with ``env``: the first
    revision holds the extension's tables and gives the schema of
    ``db.create_all()``; a second ``flask db migrate`` finds nothing to do;
    ``upgrade_extension()`` (the console's ``pip install --upgrade``) brings the
    next version and returns the environment to go on with, and the revision
    written then adds its column. No file under ``installed`` (the package,
    site-packages) changes or appears on the way."""
    engine = sa.create_engine(database_url)
    try:
        wipe(engine)
        project.mkdir(exist_ok=True)
        shutil.copy(MIGRATIONS_APP, project / "myapp.py")
        env = env | {
            "FLASK_SQLALCHEMY_DATABASE_URI": database_url,
            "FLASK_JWT_AUTH_SECRET_KEY": "s" * 64,
        }
        transcript = Transcript(env, project)
        before = [tree_hashes(folder) for folder in installed]
        transcript.run_all(read_steps(EXAMPLES / "migrations.console", "init"))
        (first,) = revisions(project)
        text = first.read_text(encoding="utf-8")
        for table in [*ours().tables, "user"]:
            assert f"op.create_table('{table}'" in text, table
        migrated = snapshot(engine)
        assert {"user", "alembic_version"} < set(sa.inspect(engine).get_table_names())

        # Nothing to do while the tables are as the extension defines them: the
        # engine's types and indexes read back as they were written.
        again = transcript.run(Step(0, 'flask --app myapp db migrate -m "nothing"'))
        assert "No changes in schema detected." in again
        assert revisions(project) == [first]
        assert [tree_hashes(folder) for folder in installed] == before, (
            "flask db init, migrate or upgrade wrote into the installed package"
        )

        pip, *steps = read_steps(EXAMPLES / "migrations.console", "upgrade")
        assert pip.command == "pip install --upgrade flask_jwt_authentication"
        transcript.env = upgrade_extension() | {
            name: env[name]
            for name in ("FLASK_SQLALCHEMY_DATABASE_URI", "FLASK_JWT_AUTH_SECRET_KEY")
        }
        after_install = [tree_hashes(folder) for folder in installed]
        transcript.run_all(steps)
        assert [tree_hashes(folder) for folder in installed] == after_install, (
            "flask db migrate wrote into the installed package"
        )
        (second,) = (path for path in revisions(project) if path != first)
        change = second.read_text(encoding="utf-8")
        assert f"sa.Column('{NEW_COLUMN}'" in change
        assert f"'ix_jwt_auth_sessions_{NEW_COLUMN}'" in change
        columns = {c["name"] for c in sa.inspect(engine).get_columns(SESSIONS)}
        assert NEW_COLUMN in columns
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes(SESSIONS)}
        assert f"ix_jwt_auth_sessions_{NEW_COLUMN}" in indexes

        # The change goes back out as it came in.
        transcript.run(Step(0, "flask --app myapp db downgrade"))
        assert snapshot(engine) == migrated

        wipe(engine)
        ours().create_all(engine)
        assert migrated == snapshot(engine)
        if engine.dialect.name == "postgresql":
            # A native UUID column where the engine has one.
            assert migrated[SESSIONS]["columns"][0][:2] == ("id", "UUID")
    finally:
        wipe(engine)
        engine.dispose()


@pytest.mark.slow
def test_flask_migrate_creates_and_alters_the_tables(
    database_url: str, tmp_path: Path
) -> None:
    """This environment, and the next version of the package as a copy of its
    source with the changed ``models.py`` first on ``PYTHONPATH``."""
    later = tmp_path / "later"
    shutil.copytree(
        PACKAGE,
        later / PACKAGE.name,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    models = later / PACKAGE.name / "models.py"
    models.write_text(changed_models(models.read_text("utf-8")), "utf-8")
    env = shell_env()

    def upgrade_extension() -> dict[str, str]:
        return env | {"PYTHONPATH": str(later)}

    migration_scenario(
        tmp_path / "project", env, database_url, upgrade_extension, [PACKAGE, later]
    )


def test_the_package_ships_no_revisions() -> None:
    """The application's revisions are the only ones: the package holds no
    Alembic revision that could become a version location."""
    assert not (PACKAGE / "migrations").exists()
    for path in PACKAGE.rglob("*.py"):
        assert "from alembic" not in path.read_text(encoding="utf-8"), path


def test_every_hot_lookup_is_indexed() -> None:
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
