"""The recipes of docs/events.rst, imported from examples/recipes.py and run on a
real request path."""

from __future__ import annotations

import logging
import time
import typing as t
from types import ModuleType

import pytest
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import example_module
from conftest import login
from conftest import tokens_for

from flask_jwt_authentication import jwt_required
from flask_jwt_authentication import signals


@pytest.fixture(scope="module")
def recipes() -> t.Iterator[ModuleType]:
    with example_module("recipes.py") as module:
        yield module


def test_roles_in_the_token_gate_a_route(make_app: t.Any, recipes: ModuleType) -> None:
    env: AppEnv = make_app()
    recipes.add_reports(env.app, env.jwt)

    @env.app.get("/api/editing")
    @jwt_required(roles="editor")
    def editing() -> dict[str, bool]:
        return {"ok": True}

    env.create_user("alice", roles="admin, editor")
    env.create_user("bob", roles="editor")
    env.create_user("carol", roles="auditor")
    client = env.app.test_client()
    alice = tokens_for(client, "alice")["access_token"]
    bob = tokens_for(client, "bob")["access_token"]
    carol = tokens_for(client, "carol")["access_token"]
    r = client.get("/api/reports", headers=bearer(alice))
    assert r.status_code == 200
    assert r.get_json() == {"reports": [], "for": ["admin", "editor"]}
    r = client.get("/api/reports", headers=bearer(carol))
    assert r.status_code == 200
    assert r.get_json()["for"] == ["auditor"]
    r = client.get("/api/reports", headers=bearer(bob))
    assert r.status_code == 403
    assert r.get_json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert client.get("/api/editing", headers=bearer(bob)).status_code == 200
    assert client.get("/api/editing", headers=bearer(carol)).status_code == 403


def test_audit_log_of_issued_tokens(
    env: AppEnv, recipes: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    signals.jwt_encoded.connect(recipes.log_issued_token, env.app)
    try:
        with caplog.at_level(logging.INFO, logger="audit"):
            pair = tokens_for(env.app.test_client())
    finally:
        signals.jwt_encoded.disconnect(recipes.log_issued_token, env.app)
    lines = [r.getMessage() for r in caplog.records if r.name == "audit"]
    assert len(lines) == 1
    assert "sub=1" in lines[0]
    assert pair["access_token"] not in caplog.text
    assert pair["access_token"].split(".")[2] not in caplog.text


def test_token_bound_to_the_client(env: AppEnv, recipes: ModuleType) -> None:
    signals.jwt_created.connect(recipes.bind_to_client, env.app)
    signals.jwt_decoded.connect(recipes.check_client_binding, env.app)
    try:
        client = env.app.test_client()
        here = {"REMOTE_ADDR": "192.0.2.10"}
        device = {"X-Device-Id": "phone-1"}
        r = client.post(
            f"{PREFIX}/tokens",
            json={"username": "alice", "password": "correct horse battery staple"},
            environ_base=here,
            headers=device,
        )
        token = r.get_json()["access_token"]
        same = client.get("/api/me", headers=bearer(token) | device, environ_base=here)
        assert same.status_code == 200
        elsewhere = client.get(
            "/api/me",
            headers=bearer(token) | device,
            environ_base={"REMOTE_ADDR": "198.51.100.7"},
        )
        other_device = client.get(
            "/api/me",
            headers=bearer(token) | {"X-Device-Id": "laptop"},
            environ_base=here,
        )
        for refused in (elsewhere, other_device):
            assert refused.status_code == 401
            assert refused.get_json() == {
                "error": "invalid_token",
                "error_description": "The token was issued to another client.",
            }
    finally:
        signals.jwt_created.disconnect(recipes.bind_to_client, env.app)
        signals.jwt_decoded.disconnect(recipes.check_client_binding, env.app)


def test_tokens_older_than_the_password_are_refused(
    env: AppEnv, recipes: ModuleType
) -> None:
    def load_user(uid: t.Any) -> t.Any:
        return env.db.session.get(env.User, uid)

    receiver = recipes.reject_tokens_older_than_password(load_user)
    signals.jwt_decoded.connect(receiver, env.app, weak=False)
    try:
        client = env.app.test_client()
        old = tokens_for(client)["access_token"]
        assert client.get("/api/me", headers=bearer(old)).status_code == 200
        env.set_user("alice", password_changed_at=int(time.time()) + 1)
        r = client.get("/api/me", headers=bearer(old))
        assert r.status_code == 401
        assert r.get_json()["error_description"] == (
            "The password has changed since; log in again."
        )
        env.set_user("alice", password_changed_at=int(time.time()) - 10)
        assert login(client).status_code == 200
        assert client.get("/api/me", headers=bearer(old)).status_code == 200
    finally:
        signals.jwt_decoded.disconnect(receiver, env.app)


def test_rehashed_passwords_are_stored(env: AppEnv, recipes: ModuleType) -> None:
    from conftest import PASSWORD
    from werkzeug.security import check_password_hash
    from werkzeug.security import generate_password_hash

    env.set_user(
        "alice", password_hash=generate_password_hash(PASSWORD, "pbkdf2:sha256:500")
    )
    receiver = recipes.store_rehashed_password(env.db)
    signals.password_rehashed.connect(receiver, env.app, weak=False)
    try:
        assert login(env.app.test_client()).status_code == 200
    finally:
        signals.password_rehashed.disconnect(receiver, env.app)
    with env.app.app_context():
        user = env.db.session.execute(
            env.db.select(env.User).filter_by(username="alice")
        ).scalar_one()
        assert user.password_hash.startswith(env.jwt.dummy_password_hash.split("$")[0])
        assert check_password_hash(user.password_hash, PASSWORD)
