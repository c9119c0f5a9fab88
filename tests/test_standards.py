"""The OAuth standard endpoints, over HTTP: server metadata (RFC 8414), token
revocation (RFC 7009), token introspection (RFC 7662), step-up authentication
(RFC 9470) and the per-user "not before" of a password change.

The resource-server tests run a second Flask application that knows nothing of
the extension: it asks the auth server, over real HTTP, whether a token is active.
"""

from __future__ import annotations

import base64
import json
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request

import jwt as pyjwt
import pytest
import sqlalchemy as sa
import time_machine
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import key_config
from conftest import login
from conftest import tokens_for
from flask import Flask
from flask import request
from werkzeug.security import generate_password_hash

from flask_jwt_authentication import jwt_required
from flask_jwt_authentication import signals
from flask_jwt_authentication.errors import ConfigurationError

METADATA = "/.well-known/oauth-authorization-server"
GATEWAY_SECRET = "gateway secret of 32 characters!"
CLIENTS = {
    "gateway": generate_password_hash(GATEWAY_SECRET, method="pbkdf2:sha256:1000"),
    "plain": "a plain secret",
}


def basic(client_id: str, secret: str) -> dict[str, str]:
    """HTTP Basic as RFC 6749 §2.3.1 has clients send it (form-encoded first)."""
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


GATEWAY = basic("gateway", GATEWAY_SECRET)


@pytest.fixture
def std(make_app: t.Callable[..., AppEnv]) -> AppEnv:
    """An app with two introspection clients and a step-up route."""
    env = make_app(JWT_AUTH_INTROSPECTION_CLIENTS=CLIENTS)
    env.create_user("alice")

    @env.app.get("/api/sensitive")
    @jwt_required(max_age=300)
    def sensitive() -> dict[str, t.Any]:
        return {"ok": True}

    return env


# RFC 8414 ---------------------------------------------------------------------------


def test_metadata_names_the_endpoints_and_the_issuer(std: AppEnv) -> None:
    client = std.app.test_client()
    r = client.get(METADATA)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "public, max-age=300"
    metadata = r.get_json()
    pair = tokens_for(client)
    claims = pyjwt.decode(pair["access_token"], options={"verify_signature": False})
    # RFC 8414 §3.3: the issuer is identical to the tokens' iss.
    assert metadata["issuer"] == claims["iss"]
    base = "http://localhost"
    assert metadata["token_endpoint"] == f"{base}{PREFIX}/tokens"
    assert metadata["revocation_endpoint"] == f"{base}{PREFIX}/revoke"
    assert metadata["introspection_endpoint"] == f"{base}{PREFIX}/introspect"
    assert metadata["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert metadata["grant_types_supported"] == ["password", "refresh_token"]
    assert metadata["access_token_signing_alg_values_supported"] == ["HS256"]
    assert metadata["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic"
    ]
    assert client.head(METADATA).status_code == 200


def test_metadata_can_be_extended_by_a_signal(std: AppEnv) -> None:
    def add(sender: Flask, metadata: dict[str, t.Any]) -> None:
        metadata["service_documentation"] = "https://docs.example.com/auth"

    with signals.server_metadata_created.connected_to(add, std.app):
        metadata = std.app.test_client().get(METADATA).get_json()
    assert metadata["service_documentation"] == "https://docs.example.com/auth"


def test_pyjwkclient_verifies_tokens_with_the_jwks_uri_of_the_metadata(
    make_app: t.Callable[..., AppEnv], serve: t.Callable[[AppEnv], int]
) -> None:
    """An independent client library finds the keys from the metadata alone."""
    env = make_app(**key_config("RS256"))
    env.create_user("alice")
    port = serve(env)
    base = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(base + METADATA, timeout=10) as response:  # noqa: S310
        metadata = json.load(response)
    assert metadata["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert metadata["access_token_signing_alg_values_supported"] == ["RS256"]
    token = tokens_for(env.app.test_client())["access_token"]
    signing_key = pyjwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(
        token
    )
    claims = pyjwt.decode(
        token,
        signing_key.key,
        algorithms=metadata["access_token_signing_alg_values_supported"],
        issuer=metadata["issuer"],
    )
    assert claims["uid"] == 1


# RFC 7009 ---------------------------------------------------------------------------


def test_revoking_a_refresh_token_ends_its_session(std: AppEnv) -> None:
    client = std.app.test_client()
    pair = tokens_for(client)
    r = client.post(
        f"{PREFIX}/revoke",
        data={"token": pair["refresh_token"], "token_type_hint": "refresh_token"},
    )
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    assert r.get_data() == b""
    # §2.1: the session's access tokens go with it.
    assert (
        client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 401
    )
    r = client.post(f"{PREFIX}/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401


def test_revoking_an_access_token_revokes_its_jti_only(std: AppEnv) -> None:
    client = std.app.test_client()
    pair = tokens_for(client)
    r = client.post(f"{PREFIX}/revoke", json={"token": pair["access_token"]})
    assert r.status_code == 200
    assert (
        client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 401
    )
    # The session lives on: its refresh token still gives a new pair.
    r = client.post(f"{PREFIX}/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200
    again = client.get("/api/me", headers=bearer(r.get_json()["access_token"]))
    assert again.status_code == 200


def test_the_hint_never_limits_the_search(std: AppEnv) -> None:
    """RFC 7009 §2.1: a wrong hint still finds the token."""
    client = std.app.test_client()
    pair = tokens_for(client)
    r = client.post(
        f"{PREFIX}/revoke",
        data={"token": pair["access_token"], "token_type_hint": "refresh_token"},
    )
    assert r.status_code == 200
    assert (
        client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 401
    )


@pytest.mark.parametrize(
    "token",
    ["not a token of ours", "a.b.c", "eyJhbGciOiJub25lIn0.eyJqdGkiOiJ4In0."],
)
def test_unknown_tokens_also_get_200_and_write_nothing(std: AppEnv, token: str) -> None:
    client = std.app.test_client()
    tokens_for(client)
    before = std.row_counts()
    r = client.post(f"{PREFIX}/revoke", data={"token": token})
    assert r.status_code == 200
    assert std.row_counts() == before


def test_revoking_twice_is_still_200(std: AppEnv) -> None:
    client = std.app.test_client()
    pair = tokens_for(client)
    for _ in range(2):
        for token in (pair["access_token"], pair["refresh_token"]):
            assert (
                client.post(f"{PREFIX}/revoke", data={"token": token}).status_code
                == 200
            )


def test_a_hint_of_a_type_never_issued_is_unsupported(std: AppEnv) -> None:
    r = std.app.test_client().post(
        f"{PREFIX}/revoke", data={"token": "xyz", "token_type_hint": "saml_assertion"}
    )
    assert r.status_code == 400
    assert r.get_json()["error"] == "unsupported_token_type"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("token=a&token=b", "application/x-www-form-urlencoded"),
        ("token_type_hint=access_token", "application/x-www-form-urlencoded"),
        ("token=", "application/x-www-form-urlencoded"),
        ("token=%FF", "application/x-www-form-urlencoded"),
        ('{"token": 5}', "application/json"),
        ("[1]", "application/json"),
        ("", "application/json"),
    ],
)
def test_malformed_requests_get_invalid_request(
    std: AppEnv, body: str, content_type: str
) -> None:
    client = std.app.test_client()
    pair = tokens_for(client)
    before = std.row_counts()
    for path in ("revoke", "introspect"):
        r = client.post(
            f"{PREFIX}/{path}", data=body, content_type=content_type, headers=GATEWAY
        )
        assert r.status_code == 400, (path, r.get_json())
        assert r.get_json()["error"] == "invalid_request"
    assert std.row_counts() == before
    assert (
        client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 200
    )


def test_revocation_attempts_that_find_nothing_are_flood_limited(
    make_app: t.Callable[..., AppEnv],
) -> None:
    env = make_app(RATELIMIT_ENABLED=True, JWT_AUTH_FLOOD_REFRESH_LIMIT="3 per hour")
    client = env.app.test_client()
    statuses = [
        client.post(f"{PREFIX}/revoke", data={"token": f"guess-{i}"}).status_code
        for i in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]


# RFC 7662 ---------------------------------------------------------------------------


def test_introspection_without_credentials_is_challenged_with_basic(
    std: AppEnv,
) -> None:
    client = std.app.test_client()
    token = tokens_for(client)["access_token"]
    for headers in (
        {},
        bearer(token),
        basic("gateway", "wrong"),
        basic("nobody", GATEWAY_SECRET),
    ):
        r = client.post(f"{PREFIX}/introspect", data={"token": token}, headers=headers)
        assert r.status_code == 401
        assert r.get_json()["error"] == "invalid_client"
        assert r.headers["WWW-Authenticate"] == 'Basic realm="testapp"'


def test_plain_and_hashed_secrets_both_work(std: AppEnv) -> None:
    client = std.app.test_client()
    token = tokens_for(client)["access_token"]
    for headers in (GATEWAY, basic("plain", "a plain secret")):
        r = client.post(f"{PREFIX}/introspect", data={"token": token}, headers=headers)
        assert r.status_code == 200
        assert r.get_json()["active"] is True


def test_an_active_access_token_shows_its_claims(std: AppEnv) -> None:
    client = std.app.test_client()
    before = int(time.time())
    token = tokens_for(client)["access_token"]
    r = client.post(f"{PREFIX}/introspect", data={"token": token}, headers=GATEWAY)
    assert r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert body == {**claims, "active": True, "token_type": "Bearer"}
    assert before <= body["auth_time"] <= int(time.time())


def test_an_active_refresh_token_shows_its_session(std: AppEnv) -> None:
    client = std.app.test_client()
    pair = tokens_for(client)
    access = pyjwt.decode(pair["access_token"], options={"verify_signature": False})
    r = client.post(
        f"{PREFIX}/introspect",
        json={"token": pair["refresh_token"], "token_type_hint": "refresh_token"},
        headers=GATEWAY,
    )
    body = r.get_json()
    assert body["active"] is True
    assert body["token_type"] == "refresh_token"
    assert (body["sid"], body["uid"], body["sub"]) == (access["sid"], 1, "1")
    assert body["auth_time"] == access["auth_time"]


def test_revocations_show_at_once(std: AppEnv) -> None:
    client = std.app.test_client()
    pair = tokens_for(client)

    def active(token: str) -> bool:
        r = client.post(f"{PREFIX}/introspect", data={"token": token}, headers=GATEWAY)
        return bool(r.get_json()["active"])

    assert active(pair["access_token"])
    assert active(pair["refresh_token"])
    client.post(f"{PREFIX}/logout", headers=bearer(pair["access_token"]))
    assert not active(pair["access_token"])
    assert not active(pair["refresh_token"])
    r = client.post(
        f"{PREFIX}/introspect", data={"token": pair["access_token"]}, headers=GATEWAY
    )
    assert r.get_json() == {"active": False}


def test_consumed_expired_and_disabled_are_inactive(std: AppEnv) -> None:
    client = std.app.test_client()

    def active(token: str) -> bool:
        r = client.post(f"{PREFIX}/introspect", data={"token": token}, headers=GATEWAY)
        return bool(r.get_json()["active"])

    first = tokens_for(client)
    second = client.post(
        f"{PREFIX}/refresh", json={"refresh_token": first["refresh_token"]}
    ).get_json()
    assert not active(first["refresh_token"])  # consumed
    assert active(second["refresh_token"])
    with time_machine.travel(time.time() + 901, tick=False):
        assert not active(second["access_token"])  # expired
    std.set_user("alice", is_active=False)
    assert not active(second["access_token"])
    assert not active("garbage")


# A resource server that introspects -------------------------------------------------


def resource_server(auth_base: str) -> Flask:
    """A Flask API that knows only the auth server's URL and its own credentials."""
    app = Flask("resource")

    def call(path: str, form: dict[str, str], auth: bool) -> tuple[int, t.Any]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if auth:
            headers.update(GATEWAY)
        req = urllib.request.Request(  # noqa: S310
            auth_base + path,
            data=urllib.parse.urlencode(form).encode(),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
                body = response.read()
                return response.status, json.loads(body) if body else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    @app.get("/documents")
    def documents() -> tuple[dict[str, t.Any], int]:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        status, body = call(f"{PREFIX}/introspect", {"token": token}, auth=True)
        assert status == 200, body
        if not body["active"]:
            return {"error": "invalid_token"}, 401
        return {"owner": body["uid"], "auth_time": body["auth_time"]}, 200

    @app.post("/sign-out")
    def sign_out() -> tuple[dict[str, t.Any], int]:
        token = request.form["refresh_token"]
        status, _ = call(f"{PREFIX}/revoke", {"token": token}, auth=False)
        return {"revoked": status == 200}, status

    return app


def test_a_resource_server_follows_log_outs_through_introspection(
    std: AppEnv, serve: t.Callable[[AppEnv], int]
) -> None:
    port = serve(std)
    resource = resource_server(f"http://127.0.0.1:{port}").test_client()
    pair = tokens_for(std.app.test_client())
    r = resource.get("/documents", headers=bearer(pair["access_token"]))
    assert (r.status_code, r.get_json()["owner"]) == (200, 1)
    # The user signs out through the resource server's own page (RFC 7009).
    r = resource.post("/sign-out", data={"refresh_token": pair["refresh_token"]})
    assert r.get_json() == {"revoked": True}
    assert (
        resource.get("/documents", headers=bearer(pair["access_token"])).status_code
        == 401
    )
    # A new log-in works at once again.
    fresh = tokens_for(std.app.test_client())
    assert (
        resource.get("/documents", headers=bearer(fresh["access_token"])).status_code
        == 200
    )


def test_introspection_clients_are_checked_at_start_up(
    make_app: t.Callable[..., AppEnv],
) -> None:
    for clients, named in [
        (["gateway"], "mapping"),
        ({"a:b": "secret"}, "':'"),
        ({"gateway": ""}, "non-empty"),
    ]:
        with pytest.raises(ConfigurationError, match=named) as caught:
            make_app(JWT_AUTH_INTROSPECTION_CLIENTS=clients)
        assert "JWT_AUTH_INTROSPECTION_CLIENTS" in str(caught.value)


def test_no_client_configured_refuses_every_introspection(
    make_app: t.Callable[..., AppEnv],
) -> None:
    env = make_app()
    env.create_user("alice")
    client = env.app.test_client()
    token = tokens_for(client)["access_token"]
    r = client.post(f"{PREFIX}/introspect", data={"token": token}, headers=GATEWAY)
    assert r.status_code == 401


# RFC 9470 step-up -------------------------------------------------------------------


def test_step_up_refuses_an_old_log_in_and_a_new_one_passes(std: AppEnv) -> None:
    client = std.app.test_client()
    pair = tokens_for(client)
    assert (
        client.get("/api/sensitive", headers=bearer(pair["access_token"])).status_code
        == 200
    )
    with time_machine.travel(time.time() + 301, tick=False):
        r = client.get("/api/sensitive", headers=bearer(pair["access_token"]))
        assert r.status_code == 401
        assert r.get_json()["error"] == "insufficient_user_authentication"
        challenge = r.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="testapp", ')
        assert 'error="insufficient_user_authentication"' in challenge
        assert challenge.endswith(", max_age=300")
        # Routes without max_age still take the token.
        assert (
            client.get("/api/me", headers=bearer(pair["access_token"])).status_code
            == 200
        )
        # A refresh keeps auth_time: still too old.
        refreshed = client.post(
            f"{PREFIX}/refresh", json={"refresh_token": pair["refresh_token"]}
        ).get_json()
        old = pyjwt.decode(pair["access_token"], options={"verify_signature": False})
        new = pyjwt.decode(
            refreshed["access_token"], options={"verify_signature": False}
        )
        assert new["auth_time"] == old["auth_time"] < new["iat"]
        r = client.get("/api/sensitive", headers=bearer(refreshed["access_token"]))
        assert r.status_code == 401
        # The password again: a fresh token.
        again = tokens_for(client)
        r = client.get("/api/sensitive", headers=bearer(again["access_token"]))
        assert r.status_code == 200


def test_max_age_must_be_a_number_of_seconds() -> None:
    for bad in (-1, "60", 1.5, True):
        with pytest.raises(TypeError, match="max_age"):
            jwt_required(max_age=bad)  # type: ignore[arg-type]


# Password changes -------------------------------------------------------------------


def test_a_password_change_stops_every_earlier_token(std: AppEnv) -> None:
    client = std.app.test_client()
    first, second = tokens_for(client), tokens_for(client)
    received: list[dict[str, t.Any]] = []

    def record(sender: Flask, **extra: t.Any) -> None:
        received.append(extra)

    with (
        signals.password_changed.connected_to(record, std.app),
        std.app.test_request_context(),
    ):
        user = std.db.session.execute(
            sa.select(std.User).filter_by(username="alice")
        ).scalar_one()
        user.password_hash = generate_password_hash(
            "a new password", "pbkdf2:sha256:1000"
        )
        std.db.session.commit()
        ended = std.jwt.password_changed(user)
    assert ended == 2
    assert [r["sessions_revoked"] for r in received] == [2]
    for pair in (first, second):
        assert (
            client.get("/api/me", headers=bearer(pair["access_token"])).status_code
            == 401
        )
        r = client.post(
            f"{PREFIX}/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert r.status_code == 401
    assert login(client, password=PASSWORD).status_code == 401
    r = login(client, password="a new password")
    assert r.status_code == 200
    fresh = r.get_json()["access_token"]
    assert client.get("/api/me", headers=bearer(fresh)).status_code == 200
