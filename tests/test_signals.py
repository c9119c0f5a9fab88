"""The blinker events: those of docs/events.rst (``jwt_created``, ``jwt_encoded``,
``jwt_decoded``) and the audit ones (``login_failed``, ``token_refreshed``,
``logged_out``, ``refresh_token_reused``)."""

from __future__ import annotations

import base64
import json
import logging
import typing as t

import pytest
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import login
from conftest import tokens_for

from flask_jwt_authentication import TokenRejected
from flask_jwt_authentication import signals


def claims_of(token: str) -> dict[str, t.Any]:
    segment = token.split(".")[1]
    return t.cast(
        dict[str, t.Any],
        json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))),
    )


class Recorder:
    """A receiver that remembers every call (sender and keyword arguments)."""

    def __init__(self, name: str = "", log: list[str] | None = None) -> None:
        self.name = name
        self.log = log
        self.calls: list[tuple[t.Any, dict[str, t.Any]]] = []

    def __call__(self, sender: t.Any, **kwargs: t.Any) -> None:
        # Copy the payload: what it was when the signal was sent.
        if isinstance(kwargs.get("payload"), dict):
            kwargs = {**kwargs, "payload_copy": dict(kwargs["payload"])}
        # The user object is only usable during the request: note what it was.
        if "user" in kwargs:
            user = kwargs["user"]
            kwargs["user_seen"] = (type(user), user.username)
        self.calls.append((sender, kwargs))
        if self.log is not None:
            self.log.append(self.name)


def refresh(client: t.Any, refresh_token: str) -> t.Any:
    return client.post(f"{PREFIX}/refresh", json={"refresh_token": refresh_token})


# jwt_created -----------------------------------------------------------------------


def test_jwt_created_once_per_token(env: AppEnv, client):
    created = Recorder()
    with signals.jwt_created.connected_to(created, sender=env.app):
        pair = tokens_for(client)
        assert len(created.calls) == 1
        sender, kwargs = created.calls[0]
        assert sender is env.app
        assert set(kwargs) == {"payload", "user", "payload_copy", "user_seen"}
        assert kwargs["user_seen"] == (env.User, "alice")
        assert kwargs["payload_copy"] == claims_of(pair["access_token"])

        r = refresh(client, pair["refresh_token"])
        assert r.status_code == 200
        assert len(created.calls) == 2
        assert created.calls[1][1]["payload_copy"] == claims_of(
            r.get_json()["access_token"]
        )

        # Calls that issue nothing send nothing: a failed log-in, a verified
        # request, a replayed refresh token.
        assert login(client, "alice", "wrong").status_code == 401
        token = r.get_json()["token"]
        assert client.get("/api/me", headers=bearer(token)).status_code == 200
        assert refresh(client, pair["refresh_token"]).status_code == 401
    assert len(created.calls) == 2


def test_jwt_created_receiver_adds_a_claim(env: AppEnv, client):
    def add_roles(sender: t.Any, payload: dict[str, t.Any], user: t.Any) -> None:
        payload["roles"] = ["editor"]
        payload["name"] = user.username

    with signals.jwt_created.connected_to(add_roles, sender=env.app):
        pair = tokens_for(client)
    claims = claims_of(pair["access_token"])
    assert claims["roles"] == ["editor"]
    assert claims["name"] == "alice"
    # The verified claims a view sees include it.
    r = client.get("/api/optional", headers=bearer(pair["access_token"]))
    assert r.status_code == 200
    assert r.get_json()["claims"]["roles"] == ["editor"]


RESERVED_CHANGES = {
    "exp changed": lambda p: p.update(exp=p["exp"] + 10**6),
    "sub changed": lambda p: p.update(sub="someone-else"),
    "uid changed": lambda p: p.update(uid=999),
    "iss changed": lambda p: p.update(iss="evil"),
    "jti changed": lambda p: p.update(jti="fixed"),
    "sid changed": lambda p: p.update(sid="00000000-0000-0000-0000-000000000000"),
    "aud added": lambda p: p.update(aud="other-service"),
    "nbf removed": lambda p: p.pop("nbf"),
}


@pytest.mark.parametrize("change", RESERVED_CHANGES.values(), ids=RESERVED_CHANGES)
def test_jwt_created_receiver_may_not_touch_reserved_claims(env: AppEnv, change):
    """Issuance fails and nothing is committed.

    The failure is a programming error of the host app, so it surfaces as an
    exception (a 500 in production), not as a client error.
    """
    encoded = Recorder()
    before = env.row_counts()

    def tamper(sender: t.Any, payload: dict[str, t.Any], user: t.Any) -> None:
        change(payload)

    with (
        signals.jwt_created.connected_to(tamper, sender=env.app),
        signals.jwt_encoded.connected_to(encoded, sender=env.app),
    ):
        # TESTING propagates the exception to the test client.
        with pytest.raises(RuntimeError, match="reserved claims"):
            login(env.app.test_client())
        assert encoded.calls == []
        assert env.row_counts() == before

        # Outside TESTING the client gets a JSON 500 and no token.
        env.app.config["PROPAGATE_EXCEPTIONS"] = False
        r = login(env.app.test_client())
        assert r.status_code == 500
        assert r.get_json() == {
            "error": "server_error",
            "error_description": "The server could not handle the request.",
        }
        assert b"refresh_token" not in r.data
        assert encoded.calls == []
        assert env.row_counts() == before


def test_jwt_created_reserved_change_on_refresh_commits_nothing(env: AppEnv, client):
    pair = tokens_for(client)
    before = env.table_rows("jwt_auth_refresh_tokens")

    def tamper(sender: t.Any, payload: dict[str, t.Any], user: t.Any) -> None:
        payload["exp"] += 3600

    with (
        signals.jwt_created.connected_to(tamper, sender=env.app),
        pytest.raises(RuntimeError, match="exp"),
    ):
        refresh(client, pair["refresh_token"])
    # The presented refresh token was not consumed: it still works.
    assert env.table_rows("jwt_auth_refresh_tokens") == before
    assert refresh(client, pair["refresh_token"]).status_code == 200


# jwt_encoded -----------------------------------------------------------------------


def test_jwt_encoded_once_after_signing(env: AppEnv, client):
    encoded = Recorder()
    with signals.jwt_encoded.connected_to(encoded, sender=env.app):
        pair = tokens_for(client)
    assert len(encoded.calls) == 1
    sender, kwargs = encoded.calls[0]
    assert sender is env.app
    assert set(kwargs) == {"token", "payload", "payload_copy"}
    assert kwargs["token"] == pair["access_token"]
    assert kwargs["payload"] == claims_of(pair["access_token"])


def test_order_created_then_encoded(env: AppEnv, client):
    log: list[str] = []
    created, encoded = Recorder("created", log), Recorder("encoded", log)
    with (
        signals.jwt_created.connected_to(created, sender=env.app),
        signals.jwt_encoded.connected_to(encoded, sender=env.app),
    ):
        pair = tokens_for(client)
        assert log == ["created", "encoded"]
        r = refresh(client, pair["refresh_token"])
        assert r.status_code == 200
        assert log == ["created", "encoded", "created", "encoded"]
    # The claims a jwt_created receiver saw are the ones signed.
    assert created.calls[1][1]["payload"] == encoded.calls[1][1]["payload"]
    assert encoded.calls[1][1]["token"] == r.get_json()["access_token"]


# jwt_decoded -----------------------------------------------------------------------


def test_jwt_decoded_payload_and_token(env: AppEnv, client):
    pair = tokens_for(client)
    token = pair["access_token"]
    decoded = Recorder()
    with signals.jwt_decoded.connected_to(decoded, sender=env.app):
        assert client.get("/api/me", headers=bearer(token)).status_code == 200
        # Not sent for a token that fails verification, nor without a token.
        assert client.get("/api/me", headers=bearer(token + "x")).status_code == 401
        assert client.get("/api/me").status_code == 401
    assert len(decoded.calls) == 1
    sender, kwargs = decoded.calls[0]
    assert sender is env.app
    assert kwargs["token"] == token
    assert kwargs["payload"] == claims_of(token)


def test_jwt_decoded_not_sent_for_a_revoked_token(env: AppEnv, client):
    token = tokens_for(client)["access_token"]
    assert client.post(f"{PREFIX}/logout", headers=bearer(token)).status_code == 204
    decoded = Recorder()
    with signals.jwt_decoded.connected_to(decoded, sender=env.app):
        assert client.get("/api/me", headers=bearer(token)).status_code == 401
    assert decoded.calls == []


def test_jwt_decoded_token_rejected(env: AppEnv, client):
    token = tokens_for(client)["access_token"]

    def reject(sender: t.Any, payload: dict[str, t.Any], token: str) -> None:
        raise TokenRejected("The account is locked.")

    with signals.jwt_decoded.connected_to(reject, sender=env.app):
        for path in ("/api/me", "/api/optional", "/api/async"):
            r = client.get(path, headers=bearer(token))
            assert r.status_code == 401
            assert r.get_json() == {
                "error": "invalid_token",
                "error_description": "The account is locked.",
            }
            challenge = r.headers["WWW-Authenticate"]
            assert challenge.startswith('Bearer realm="testapp"')
            assert 'error="invalid_token"' in challenge
            assert 'error_description="The account is locked."' in challenge
    assert client.get("/api/me", headers=bearer(token)).status_code == 200


def test_jwt_decoded_token_rejected_default_description(env: AppEnv, client):
    token = tokens_for(client)["access_token"]

    def reject(sender: t.Any, **kwargs: t.Any) -> None:
        raise TokenRejected()

    with signals.jwt_decoded.connected_to(reject, sender=env.app):
        r = client.get("/api/me", headers=bearer(token))
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid_token"
    assert r.get_json()["error_description"]


def test_jwt_decoded_failing_receiver_fails_closed(env: AppEnv, client, caplog):
    token = tokens_for(client)["access_token"]

    def broken(sender: t.Any, payload: dict[str, t.Any], token: str) -> None:
        raise KeyError("roles")

    caplog.set_level(logging.DEBUG)
    with signals.jwt_decoded.connected_to(broken, sender=env.app):
        r = client.get("/api/me", headers=bearer(token))
    assert r.status_code == 401
    body = r.get_json()
    assert body["error"] == "invalid_token"
    assert "roles" not in body["error_description"]
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert errors, caplog.text
    assert any(rec.exc_info and rec.exc_info[0] is KeyError for rec in errors)
    # The log carries the traceback, never the bearer token nor its signature.
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text
    # The receiver gone, the token works again: nothing was revoked.
    assert client.get("/api/me", headers=bearer(token)).status_code == 200


# Senders -----------------------------------------------------------------------------


def test_receivers_for_one_app_are_not_called_for_another(make_app):
    a, b = make_app(), make_app()
    a.create_user("alice")
    b.create_user("alice")
    recorders = {name: Recorder() for name in ("created", "encoded", "decoded")}
    ca, cb = a.app.test_client(), b.app.test_client()
    with (
        signals.jwt_created.connected_to(recorders["created"], sender=a.app),
        signals.jwt_encoded.connected_to(recorders["encoded"], sender=a.app),
        signals.jwt_decoded.connected_to(recorders["decoded"], sender=a.app),
    ):
        pair_b = tokens_for(cb)
        assert refresh(cb, pair_b["refresh_token"]).status_code == 200
        assert (
            cb.get("/api/me", headers=bearer(pair_b["access_token"])).status_code == 200
        )
        assert all(r.calls == [] for r in recorders.values())

        pair_a = tokens_for(ca)
        assert (
            ca.get("/api/me", headers=bearer(pair_a["access_token"])).status_code == 200
        )
    assert [len(r.calls) for r in recorders.values()] == [1, 1, 1]
    assert all(r.calls[0][0] is a.app for r in recorders.values())


def test_receiver_for_any_sender_hears_every_app(make_app):
    a, b = make_app(), make_app()
    a.create_user("alice")
    b.create_user("alice")
    encoded = Recorder()
    with signals.jwt_encoded.connected_to(encoded):
        tokens_for(a.app.test_client())
        tokens_for(b.app.test_client())
    assert [call[0] for call in encoded.calls] == [a.app, b.app]


# Audit signals -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password", "change", "reason"),
    [
        ("nobody", "x", {}, "unknown_user"),
        ("alice", "wrong", {}, "wrong_password"),
        (
            "alice",
            "correct horse battery staple",
            {"is_active": False},
            "disabled_user",
        ),
        ("alice", "x", {"password_hash": None}, "unusable_hash"),
        ("alice", "x", {"password_hash": "not-a-hash"}, "unusable_hash"),
    ],
)
def test_login_failed_says_why(env: AppEnv, username, password, change, reason):
    if change:
        env.set_user("alice", **change)
    failed = Recorder()
    with signals.login_failed.connected_to(failed, sender=env.app):
        r = login(env.app.test_client(), username, password)
    assert r.status_code == 401
    assert failed.calls == [
        (env.app, {"username": username, "address": "127.0.0.1", "reason": reason})
    ]


def test_login_failed_when_rate_limited(make_app):
    env = make_app(RATELIMIT_ENABLED=True, JWT_AUTH_FLOOD_USER_LIMIT="1 per minute")
    env.create_user("alice")
    failed = Recorder()
    client = env.app.test_client()
    with signals.login_failed.connected_to(failed, sender=env.app):
        assert login(client, password="wrong").status_code == 401
        assert login(client, password="wrong").status_code == 429
    assert [kwargs["reason"] for _, kwargs in failed.calls] == [
        "wrong_password",
        "too_many_attempts",
    ]


def test_login_failed_not_sent_on_success(env: AppEnv, client):
    failed = Recorder()
    with signals.login_failed.connected_to(failed, sender=env.app):
        tokens_for(client)
    assert failed.calls == []


def test_token_refreshed_after_created_and_encoded(env: AppEnv, client):
    pair = tokens_for(client)
    order: list[str] = []
    created, encoded = Recorder("created", order), Recorder("encoded", order)
    refreshed = Recorder("refreshed", order)
    with (
        signals.jwt_created.connected_to(created, sender=env.app),
        signals.jwt_encoded.connected_to(encoded, sender=env.app),
        signals.token_refreshed.connected_to(refreshed, sender=env.app),
    ):
        r = refresh(client, pair["refresh_token"])
    assert r.status_code == 200
    assert order == ["created", "encoded", "refreshed"]
    sender, kwargs = refreshed.calls[0]
    new = r.get_json()["access_token"]
    assert sender is env.app
    assert kwargs["user_seen"][1] == "alice"
    assert kwargs["session_id"] == claims_of(pair["access_token"])["sid"]
    assert kwargs["payload"] == claims_of(new)


def test_token_refreshed_not_sent_when_refused(env: AppEnv, client):
    refreshed = Recorder()
    with signals.token_refreshed.connected_to(refreshed, sender=env.app):
        assert refresh(client, "unknown-token").status_code == 401
    assert refreshed.calls == []


def test_logged_out_once_with_the_revoked_claims(env: AppEnv, client):
    pair = tokens_for(client)
    out = Recorder()
    with signals.logged_out.connected_to(out, sender=env.app):
        r = client.post(f"{PREFIX}/logout", headers=bearer(pair["access_token"]))
        assert r.status_code == 204
        # A second log-out with the revoked token is refused: no second signal.
        r = client.post(f"{PREFIX}/logout", headers=bearer(pair["access_token"]))
        assert r.status_code == 401
    assert len(out.calls) == 1
    sender, kwargs = out.calls[0]
    assert sender is env.app
    assert kwargs["user_seen"][1] == "alice"
    assert kwargs["payload"] == claims_of(pair["access_token"])


def test_refresh_token_reused_is_reported_once(env: AppEnv, client):
    pair = tokens_for(client)
    assert refresh(client, pair["refresh_token"]).status_code == 200
    reused = Recorder()
    with signals.refresh_token_reused.connected_to(reused, sender=env.app):
        r = refresh(client, pair["refresh_token"])
    assert r.status_code == 401
    assert reused.calls == [
        (
            env.app,
            {
                "session_id": claims_of(pair["access_token"])["sid"],
                "identity": 1,
                "address": "127.0.0.1",
            },
        )
    ]
