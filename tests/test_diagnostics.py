"""The extension's tables missing: the log says so and how to create them, on
every engine; the client gets a JSON 500, not "try again shortly"."""

from __future__ import annotations

import typing as t

import pytest
from conftest import AppEnv
from conftest import bearer
from conftest import login
from conftest import tokens_for

from flask_jwt_authentication.diagnostics import missing_table
from flask_jwt_authentication.models import Tables

HINT = (
    "create the tables with db.create_all(), or with Flask-Migrate generate and"
    " apply the migration (flask db migrate, then flask db upgrade)."
)


@pytest.fixture
def bare(make_app: t.Any, database_url: str) -> t.Iterator[AppEnv]:
    """An app whose users table exists and whose extension tables do not."""
    env: AppEnv = make_app(database_url)
    env.create_user("alice")
    token = tokens_for(env.app.test_client())["access_token"]
    env.app.config["TEST_TOKEN"] = token
    tables: Tables = env.app.extensions["jwt_authentication"].tables
    with env.app.app_context():
        env.db.session.remove()
        env.db.metadata.drop_all(env.db.engine, tables=list(vars(tables).values()))
    yield env
    with env.app.app_context():
        env.db.session.remove()
        env.db.create_all()


def errors_logged(caplog: t.Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


def assert_names_missing_tables(response: t.Any, caplog: t.Any) -> None:
    assert response.status_code == 500
    assert response.get_json()["error"] == "server_error"
    assert "try again" not in response.get_data(as_text=True)
    messages = errors_logged(caplog)
    assert any(
        m.startswith("The table jwt_auth_") and m.endswith("is missing: " + HINT)
        for m in messages
    ), messages


def test_log_in_without_the_tables(bare: AppEnv, caplog: t.Any) -> None:
    response = login(bare.app.test_client())
    assert_names_missing_tables(response, caplog)
    assert "jwt_auth_sessions" in " ".join(errors_logged(caplog))


def test_protected_route_without_the_tables(bare: AppEnv, caplog: t.Any) -> None:
    client = bare.app.test_client()
    response = client.get("/api/me", headers=bearer(bare.app.config["TEST_TOKEN"]))
    assert_names_missing_tables(response, caplog)


def test_cleanup_without_the_tables(bare: AppEnv, caplog: t.Any) -> None:
    result = bare.app.test_cli_runner().invoke(args=["jwt", "cleanup"])
    assert result.exit_code == 1
    assert "tables are missing" in result.output
    assert "db.create_all()" in result.output
    assert any("is missing: " + HINT in m for m in errors_logged(caplog))


def test_a_real_outage_is_still_503(make_app: t.Any, caplog: t.Any) -> None:
    env = make_app(
        "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2",
        create_tables=False,
    )
    response = login(env.app.test_client())
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert not any("is missing" in m for m in errors_logged(caplog))


def test_missing_table_reads_only_missing_tables(bare: AppEnv) -> None:
    """The real errors of the engine name the table; others name none."""
    import sqlalchemy as sa

    with bare.app.app_context():
        with pytest.raises(sa.exc.DBAPIError) as missing:
            bare.db.session.execute(sa.text("SELECT * FROM jwt_auth_keys"))
        bare.db.session.rollback()
        with pytest.raises(sa.exc.DBAPIError) as syntax:
            bare.db.session.execute(sa.text("SELEC 1"))
        bare.db.session.rollback()
    assert missing_table(missing.value) == "jwt_auth_keys"
    assert missing_table(syntax.value) is None
    assert missing_table(ValueError("no such table: x")) is None


def test_jwks_needs_no_table(bare: AppEnv) -> None:
    """The public keys of a configured key are served without the tables."""
    response = bare.app.test_client().get("/.well-known/jwks.json")
    assert (response.status_code, response.get_json()) == (200, {"keys": []})


def test_the_docs_quote_the_log_lines() -> None:
    """docs/errors.rst shows the log lines as they are written."""
    from pathlib import Path

    page = Path(__file__).parent.parent / "docs" / "errors.rst"
    text = " ".join(page.read_text(encoding="utf-8").split())
    assert "The table jwt_auth_sessions is missing: " + HINT in text
    assert (
        "No @jwt.user_loader is registered: decorate a function (identity ->"
        " user or None) with @jwt.user_loader. Until then the endpoints issue no"
        " tokens and answer 500 server_error."
    ) in text
    assert (
        "JWT_AUTH_ACESS_TOKEN_TTL is not a setting and is ignored; did you mean"
        " JWT_AUTH_ACCESS_TOKEN_TTL?"
    ) in text
