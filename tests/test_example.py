"""``examples/app.py``, imported and driven like the curl session a reader would
type: create a user, log in, call the API, refresh, replay, log out."""

from __future__ import annotations

import typing as t
from pathlib import Path
from types import ModuleType

import pytest
from conftest import example_module
from flask import Flask

PREFIX = "/jwt-authentication/api/auth"
PASSWORD = "correct horse battery staple"
#: The answers README.rst shows for the replay and after log-out.
REUSED = "The refresh token was already used; the session is revoked."
REVOKED = "The login session has been revoked."


@pytest.fixture(scope="module")
def example() -> t.Iterator[ModuleType]:
    """The example module, imported once under a name of its own."""
    with example_module("app.py") as module:
        yield module


@pytest.fixture
def app(example: ModuleType, tmp_path: Path) -> t.Iterator[Flask]:
    app = example.create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.db'}",
            "JWT_AUTH_SECRET_KEY": "e" * 64,
        }
    )
    yield app
    with app.app_context():
        example.db.session.remove()
        example.db.engine.dispose()


def create_user(app: Flask, username: str = "alice") -> None:
    """``flask --app examples/app.py create-user alice --password '...'``."""
    result = app.test_cli_runner().invoke(
        args=["create-user", username, "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    assert f"Created user {username!r}." in result.output


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_app_uses_the_given_config(app, tmp_path):
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith(str(tmp_path / "example.db"))
    assert app.extensions["jwt_authentication"].settings.algorithm == "HS256"


def test_readme_session(app):
    create_user(app)
    client = app.test_client()

    # curl -d '{"username": "alice", "password": "..."}' .../tokens
    r = client.post(
        f"{PREFIX}/tokens", json={"username": "alice", "password": PASSWORD}
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Cache-Control"] == "no-store"
    first = r.get_json()
    assert first["token_type"] == "Bearer"
    assert first["token"] == first["access_token"]
    assert first["expires_in"] == 900

    # curl -H "Authorization: Bearer $TOKEN" .../api/me
    r = client.get("/api/me", headers=bearer(first["access_token"]))
    assert r.status_code == 200
    assert r.get_json() == {"uid": 1, "username": "alice"}

    # curl -d '{"refresh_token": "..."}' .../refresh
    r = client.post(f"{PREFIX}/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200
    second = r.get_json()
    assert sorted(second) == [
        "access_token",
        "expires_in",
        "refresh_expires_in",
        "refresh_token",
        "token",
        "token_type",
    ]
    assert second["refresh_token"] != first["refresh_token"]
    r = client.get("/api/me", headers=bearer(second["access_token"]))
    assert r.status_code == 200

    # Replaying the old refresh token ends the session.
    r = client.post(f"{PREFIX}/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401
    assert r.get_json() == {
        "error": "invalid_grant",
        "error_description": REUSED,
    }
    r = client.post(
        f"{PREFIX}/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid_grant"
    for token in (second["access_token"], first["access_token"]):
        r = client.get("/api/me", headers=bearer(token))
        assert r.status_code == 401
        assert r.get_json() == {"error": "invalid_token", "error_description": REVOKED}

    # Log in again, log out, and the token is dead.
    r = client.post(
        f"{PREFIX}/tokens", json={"username": "alice", "password": PASSWORD}
    )
    assert r.status_code == 200
    third = r.get_json()
    assert (
        client.get("/api/me", headers=bearer(third["access_token"])).status_code == 200
    )
    r = client.post(f"{PREFIX}/logout", headers=bearer(third["access_token"]))
    assert r.status_code == 204
    assert r.data == b""
    r = client.get("/api/me", headers=bearer(third["access_token"]))
    assert r.status_code == 401
    assert r.get_json() == {"error": "invalid_token", "error_description": REVOKED}
    r = client.post(f"{PREFIX}/refresh", json={"refresh_token": third["refresh_token"]})
    assert r.status_code == 401


def test_wrong_password_and_no_token(app):
    create_user(app)
    client = app.test_client()
    r = client.post(f"{PREFIX}/tokens", json={"username": "alice", "password": "x"})
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid_grant"
    r = client.get("/api/me")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer realm=")


def test_create_user_prompts_with_confirmation(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-user", "bob"], input=f"{PASSWORD}\nsomething else\n"
    )
    assert result.exit_code != 0
    client = app.test_client()
    r = client.post(f"{PREFIX}/tokens", json={"username": "bob", "password": PASSWORD})
    assert r.status_code == 401
    result = runner.invoke(
        args=["create-user", "bob"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    r = client.post(f"{PREFIX}/tokens", json={"username": "bob", "password": PASSWORD})
    assert r.status_code == 200


def test_create_user_again_sets_the_password(app):
    create_user(app)
    result = app.test_cli_runner().invoke(
        args=["create-user", "alice", "--password", "a new password"]
    )
    assert result.exit_code == 0, result.output
    assert "Set the password of user 'alice'." in result.output
    client = app.test_client()
    r = client.post(
        f"{PREFIX}/tokens", json={"username": "alice", "password": PASSWORD}
    )
    assert r.status_code == 401
    r = client.post(
        f"{PREFIX}/tokens", json={"username": "alice", "password": "a new password"}
    )
    assert r.status_code == 200


def test_usernames_are_stripped_at_create_user_and_at_log_in(app):
    """Every example shares examples/users.py: a name pasted with spaces is the
    same user when created and when logging in."""
    result = app.test_cli_runner().invoke(
        args=["create-user", "  bob ", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    assert "Created user 'bob'." in result.output
    client = app.test_client()
    for name in ("bob", " bob", "bob  "):
        r = client.post(
            f"{PREFIX}/tokens", json={"username": name, "password": PASSWORD}
        )
        assert r.status_code == 200, (name, r.get_json())
        me = client.get("/api/me", headers=bearer(r.get_json()["access_token"]))
        assert me.get_json()["username"] == "bob"
