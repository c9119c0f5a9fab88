"""``@jwt_required``, ``current_user`` and ``get_jwt`` (docs/api.rst)."""

from __future__ import annotations

import base64
import json
import time
import typing as t

import jwt as pyjwt
import pytest
import sqlalchemy as sa
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import key_config
from conftest import key_path
from conftest import tokens_for

from flask_jwt_authentication import current_user
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required
from flask_jwt_authentication import keys
from flask_jwt_authentication import tokens

ADMINISTER = "administer jwt authentication"


def claims_of(token: str) -> dict[str, t.Any]:
    """The payload of a compact JWS, read as a client would (no verification)."""
    segment = token.split(".")[1]
    return t.cast(
        dict[str, t.Any],
        json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))),
    )


def header_of(token: str) -> dict[str, t.Any]:
    segment = token.split(".")[0]
    return t.cast(
        dict[str, t.Any],
        json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))),
    )


def assert_error_body(response: t.Any, status: int, error: str) -> dict[str, str]:
    """The contract's JSON error body, and nothing else."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    assert body["error_description"]
    return t.cast(dict[str, str], body)


def assert_no_credentials(response: t.Any, realm: str = "testapp") -> None:
    """401 with the bare challenge of RFC 6750 §3.1: no ``error`` attribute."""
    assert_error_body(response, 401, "invalid_token")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge == f'Bearer realm="{realm}"'
    assert "error=" not in challenge


def assert_invalid_token(response: t.Any, realm: str = "testapp") -> str:
    """401 with ``error="invalid_token"`` and an ``error_description``."""
    body = assert_error_body(response, 401, "invalid_token")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{realm}", ')
    assert 'error="invalid_token"' in challenge
    assert "error_description=" in challenge
    return body["error_description"]


@pytest.fixture
def app_env(env: AppEnv) -> AppEnv:
    """The shared test app plus routes exercising the decorator's forms."""
    app = env.app

    @app.get("/t/parens")
    @jwt_required()
    def parens() -> dict[str, t.Any]:
        return {"username": current_user.username}

    @app.get("/t/whoami")
    @jwt_required
    def whoami() -> dict[str, t.Any]:
        user = current_user._get_current_object()
        return {
            "is_user_model": isinstance(user, env.User),
            "id": user.id,
            "username": user.username,
            "claims": get_jwt(),
        }

    @app.get("/t/reports")
    @jwt_required(permission="read reports")
    def reports() -> dict[str, t.Any]:
        return {"username": current_user.username}

    return env


@pytest.fixture
def app_client(app_env: AppEnv) -> t.Any:
    return app_env.app.test_client()


@pytest.fixture
def pair(app_client: t.Any) -> dict[str, t.Any]:
    return tokens_for(app_client)


def state_of(env: AppEnv) -> t.Any:
    return env.app.extensions["jwt_authentication"]


# The forms of the decorator ------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/me", "/t/parens", "/api/async"])
def test_valid_token_passes(app_client, pair, path):
    response = app_client.get(path, headers=bearer(pair["access_token"]))
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/me", "/t/parens", "/api/async", "/api/admin"])
def test_no_credentials(app_client, path):
    assert_no_credentials(app_client.get(path))


@pytest.mark.parametrize("path", ["/api/me", "/t/parens", "/api/async"])
def test_bad_token(app_client, path):
    description = assert_invalid_token(
        app_client.get(path, headers=bearer("not-a-jwt"))
    )
    assert description == "The token is malformed."


def test_bare_and_called_forms_keep_the_view_identity():
    def view() -> str:
        """Doc."""
        return "ok"

    bare = jwt_required(view)
    called = jwt_required()(view)
    for wrapped in (bare, called):
        assert wrapped is not view
        assert wrapped.__name__ == "view"
        assert wrapped.__doc__ == "Doc."


def test_async_view_stays_a_coroutine_function(app_env, app_client, pair):
    import inspect

    assert inspect.iscoroutinefunction(app_env.app.view_functions["async_view"])
    response = app_client.get("/api/async", headers=bearer(pair["access_token"]))
    assert response.get_json() == {"uid": claims_of(pair["access_token"])["uid"]}


def test_current_user_and_get_jwt(app_env, app_client, pair):
    token = pair["access_token"]
    response = app_client.get("/t/whoami", headers=bearer(token))
    assert response.status_code == 200
    body = response.get_json()
    assert body["is_user_model"] is True
    assert body["username"] == "alice"
    assert body["claims"] == claims_of(token)
    assert body["claims"]["uid"] == body["id"]
    assert body["claims"]["sub"] == str(body["id"])


def test_outside_a_protected_view(app_env):
    with app_env.app.test_request_context("/", headers=bearer("x")):
        assert get_jwt() == {}
        assert current_user._get_current_object() is None
        assert not current_user


# optional=True -------------------------------------------------------------------


def test_optional_without_token_is_anonymous(app_client):
    response = app_client.get("/api/optional")
    assert response.status_code == 200
    assert response.get_json() == {"user": None, "claims": {}}


def test_optional_with_valid_token(app_client, pair):
    token = pair["access_token"]
    response = app_client.get("/api/optional", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"user": "alice", "claims": claims_of(token)}


@pytest.mark.parametrize(
    "authorization", ["Bearer not-a-jwt", "Bearer", "Bearer a.b.c"]
)
def test_optional_with_invalid_token_is_refused(app_client, authorization):
    response = app_client.get("/api/optional", headers={"Authorization": authorization})
    assert_invalid_token(response)


def test_optional_with_revoked_token_is_refused(app_client, pair):
    token = pair["access_token"]
    assert app_client.post(f"{PREFIX}/logout", headers=bearer(token)).status_code == 204
    assert_invalid_token(app_client.get("/api/optional", headers=bearer(token)))


# permission= ---------------------------------------------------------------------


def test_default_checker_refuses_administer(app_client, pair):
    response = app_client.get("/api/admin", headers=bearer(pair["access_token"]))
    body = assert_error_body(response, 403, "insufficient_scope")
    assert ADMINISTER in body["error_description"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="testapp"')
    assert 'error="insufficient_scope"' in challenge


def test_default_checker_refuses_unknown_permission(app_client, pair):
    response = app_client.get("/t/reports", headers=bearer(pair["access_token"]))
    assert_error_body(response, 403, "insufficient_scope")


def test_custom_checker_grants(app_env, app_client, pair):
    asked: list[tuple[t.Any, str]] = []

    @app_env.jwt.permission_checker
    def checker(user: t.Any, permission: str) -> bool:
        asked.append((user, permission))
        return permission in {ADMINISTER, "access jwt authentication"}

    token = pair["access_token"]
    response = app_client.get("/api/admin", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"ok": True}
    assert [(u.username, p) for u, p in asked] == [("alice", ADMINISTER)]
    assert isinstance(asked[0][0], app_env.User)
    # The checker still says no to what it does not grant.
    assert_error_body(
        app_client.get("/t/reports", headers=bearer(token)), 403, "insufficient_scope"
    )


def test_permission_is_checked_after_the_token(app_env, app_client):
    @app_env.jwt.permission_checker
    def checker(user: t.Any, permission: str) -> bool:
        return True

    # A granted permission never lets a request without a valid token through.
    assert_no_credentials(app_client.get("/api/admin"))
    assert_invalid_token(app_client.get("/api/admin", headers=bearer("x.y.z")))


# WWW-Authenticate and the realm ----------------------------------------------------


def test_realm_is_configurable(make_app):
    env = make_app(JWT_AUTH_REALM="Example API")
    env.create_user("alice")
    client = env.app.test_client()
    assert_no_credentials(client.get("/api/me"), realm="Example API")
    assert_invalid_token(
        client.get("/api/me", headers=bearer("nope")), realm="Example API"
    )
    token = tokens_for(client)["access_token"]
    response = client.get("/api/admin", headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="Example API"')


def test_realm_defaults_to_the_issuer(make_app):
    env = make_app(JWT_AUTH_ISSUER="https://issuer.example")
    assert_no_credentials(
        env.app.test_client().get("/api/me"), realm="https://issuer.example"
    )


# Tokens that must be refused --------------------------------------------------------


def forge(env: AppEnv, claims: dict[str, t.Any], key: t.Any = None) -> str:
    """Sign ``claims`` with the app's current key (or ``key``)."""
    return tokens.encode(claims, key or state_of(env).keyset.current)


def test_expired_token(app_env, app_client, pair):
    state = state_of(app_env)
    issued = claims_of(pair["access_token"])
    now = int(time.time())

    def made_at(when: int) -> str:
        claims = tokens.access_claims(
            state.settings, issued["uid"], issued["sid"], now=when
        )
        return forge(app_env, claims)

    # The same recipe, made now, is accepted: only the time differs.
    assert app_client.get("/api/me", headers=bearer(made_at(now))).status_code == 200
    expired = made_at(now - state.settings.access_token_ttl - 60)
    description = assert_invalid_token(
        app_client.get("/api/me", headers=bearer(expired))
    )
    assert "expired" in description
    assert (
        "expired"
        in app_client.get("/api/me", headers=bearer(expired)).headers[
            "WWW-Authenticate"
        ]
    )


def test_revoked_token(app_client, pair):
    token = pair["access_token"]
    assert app_client.get("/api/me", headers=bearer(token)).status_code == 200
    assert app_client.post(f"{PREFIX}/logout", headers=bearer(token)).status_code == 204
    assert "revoked" in assert_invalid_token(
        app_client.get("/api/me", headers=bearer(token))
    )


def test_pyjwt_token_with_the_right_key_but_type_jwt(app_env, app_client, pair):
    """A plain JWT (``typ: JWT``) is not an access token, even signed with our key
    and carrying every claim (RFC 9068 §4, RFC 8725 §3.11)."""
    claims = claims_of(pair["access_token"])
    secret = app_env.app.config["SECRET_KEY"]
    token = pyjwt.encode(claims, secret, algorithm="HS256")
    assert header_of(token)["typ"] == "JWT"
    # PyJWT itself accepts it: the signature and claims are right.
    assert pyjwt.decode(token, secret, algorithms=["HS256"], issuer="testapp")
    description = assert_invalid_token(app_client.get("/api/me", headers=bearer(token)))
    assert "not an access token" in description
    # With the access-token type and the app's kid, the same claims pass.
    typed = pyjwt.encode(
        claims,
        secret,
        algorithm="HS256",
        headers={"typ": "at+jwt", "kid": header_of(pair["access_token"])["kid"]},
    )
    assert app_client.get("/api/me", headers=bearer(typed)).status_code == 200


def test_token_signed_with_another_hmac_key(app_env, app_client, pair):
    claims = claims_of(pair["access_token"])
    other = keys.hmac_key("HS256", "o" * 64, source="test")
    assert_invalid_token(
        app_client.get("/api/me", headers=bearer(forge(app_env, claims, other)))
    )
    # Without a kid it is tried against the current key, and fails on the signature.
    no_kid = pyjwt.encode(
        claims, "o" * 64, algorithm="HS256", headers={"typ": "at+jwt"}
    )
    description = assert_invalid_token(
        app_client.get("/api/me", headers=bearer(no_kid))
    )
    assert "signature" in description


def test_token_signed_with_another_rsa_key(make_app):
    env = make_app(**key_config("RS256"))
    env.create_user("alice")
    client = env.app.test_client()
    token = tokens_for(client)["access_token"]
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    other = keys.asymmetric_key("RS256", str(key_path("rsa2048-other")))
    forged = tokens.encode(claims_of(token), other)
    assert_invalid_token(client.get("/api/me", headers=bearer(forged)))
    # The other key under our kid: the signature check still fails.
    header = {"typ": "at+jwt", "kid": header_of(token)["kid"]}
    pem = key_path("rsa2048-other").read_bytes()
    same_kid = pyjwt.encode(claims_of(token), pem, algorithm="RS256", headers=header)
    assert "signature" in assert_invalid_token(
        client.get("/api/me", headers=bearer(same_kid))
    )


def test_alg_none_is_refused(app_client, pair):
    claims = claims_of(pair["access_token"])
    token = pyjwt.encode(claims, None, algorithm="none", headers={"typ": "at+jwt"})
    assert_invalid_token(app_client.get("/api/me", headers=bearer(token)))


def test_disabled_user_token_stops_working(app_env, app_client, pair):
    token = pair["access_token"]
    assert app_client.get("/api/me", headers=bearer(token)).status_code == 200
    app_env.set_user("alice", is_active=False)
    assert_invalid_token(app_client.get("/api/me", headers=bearer(token)))
    assert_invalid_token(app_client.get("/api/optional", headers=bearer(token)))
    app_env.set_user("alice", is_active=True)
    assert app_client.get("/api/me", headers=bearer(token)).status_code == 200


def test_deleted_user_token_stops_working(app_env, app_client, pair):
    token = pair["access_token"]
    assert app_client.get("/api/me", headers=bearer(token)).status_code == 200
    with app_env.app.app_context():
        app_env.db.session.execute(sa.delete(app_env.User).filter_by(username="alice"))
        app_env.db.session.commit()
    assert_invalid_token(app_client.get("/api/me", headers=bearer(token)))


# Garbage Authorization headers: 401, never a 500 ----------------------------------


GARBAGE = {
    "scheme only": "Bearer",
    "scheme and spaces": "Bearer      ",
    "two credentials": "Bearer a b",
    "basic": "Basic dXNlcjpwYXNz",
    "nul in token": "Bearer eyJhbGciOiJIUzI1NiJ9\x00.e30.c2ln",
    "20 KB": "Bearer " + "A" * 20 * 1024,
    "dots only": "Bearer ..",
    "one segment": "Bearer abc",
    "empty segments": "Bearer a..c",
    "tab separated": "Bearer\tabc.def.ghi",
    "unicode in token": "Bearer abc.déf.ghi",
}


@pytest.mark.parametrize("authorization", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_authorization_header(app_client, authorization):
    response = app_client.get("/api/me", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert_error_body(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="testapp"')


def test_basic_scheme_counts_as_no_credentials(app_client):
    response = app_client.get(
        "/api/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert_no_credentials(response)


def test_non_ascii_bytes_in_header(app_client, pair):
    """Raw UTF-8 bytes reach a WSGI app as latin-1 text (PEP 3333)."""
    raw = ("Bearer " + pair["access_token"] + "é☃").encode().decode("latin-1")
    response = app_client.get("/api/me", environ_overrides={"HTTP_AUTHORIZATION": raw})
    assert_invalid_token(response)
    raw = b"Bearer " + "\u00ff\u00fe☃".encode()
    response = app_client.get(
        "/api/me", environ_overrides={"HTTP_AUTHORIZATION": raw.decode("latin-1")}
    )
    assert_invalid_token(response)


def test_nul_inside_a_valid_token(app_client, pair):
    token = pair["access_token"]
    broken = token[:20] + "\x00" + token[20:]
    assert_invalid_token(app_client.get("/api/me", headers=bearer(broken)))


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_scheme_is_case_insensitive(app_client, pair, scheme):
    response = app_client.get(
        "/api/me", headers={"Authorization": f"{scheme} {pair['access_token']}"}
    )
    assert response.status_code == 200
    assert response.get_json()["username"] == "alice"


# roles= -------------------------------------------------------------------------


def roles_app(make_app: t.Any, **config: t.Any) -> AppEnv:
    """An app whose tokens carry the users' roles, with role-gated routes."""
    env: AppEnv = make_app(**config)

    @env.jwt.roles_loader
    def roles(user: t.Any) -> list[str]:
        return [r for r in user.roles.split(",") if r]

    @env.app.get("/api/editors")
    @jwt_required(roles="editor")
    def editors() -> dict[str, t.Any]:
        return {"roles": get_jwt()[env.app.config.get("JWT_AUTH_ROLES_CLAIM", "roles")]}

    @env.app.get("/api/staff")
    @jwt_required(optional=True, roles=["admin", "editor"])
    def staff() -> dict[str, bool]:
        return {"ok": True}

    env.create_user("alice", roles="editor")
    env.create_user("bob", roles="")
    return env


def test_roles_claim_is_written_at_issuance(make_app):
    env = roles_app(make_app)
    client = env.app.test_client()
    token = tokens_for(client, "alice")["access_token"]
    r = client.get("/api/editors", headers=bearer(token))
    assert r.status_code == 200
    assert r.get_json() == {"roles": ["editor"]}


def test_any_of_several_roles_suffices(make_app):
    env = roles_app(make_app)
    client = env.app.test_client()
    token = tokens_for(client, "alice")["access_token"]
    assert client.get("/api/staff", headers=bearer(token)).status_code == 200


def test_missing_role_is_403_insufficient_scope(make_app):
    env = roles_app(make_app)
    client = env.app.test_client()
    token = tokens_for(client, "bob")["access_token"]
    r = client.get("/api/editors", headers=bearer(token))
    assert r.status_code == 403
    assert r.get_json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


def test_roles_need_a_token_even_when_optional(make_app):
    env = roles_app(make_app)
    r = env.app.test_client().get("/api/staff")
    assert r.status_code == 401
    assert "error=" not in r.headers["WWW-Authenticate"]


def test_without_a_roles_loader_no_roles_claim_and_role_routes_refuse(env, client):
    @env.app.get("/api/editors")
    @jwt_required(roles="editor")
    def editors() -> dict[str, bool]:
        return {"ok": True}

    token = tokens_for(client)["access_token"]
    assert "roles" not in claims_of(token)
    assert client.get("/api/editors", headers=bearer(token)).status_code == 403


def test_roles_claim_name_is_configurable(make_app):
    env = roles_app(make_app, JWT_AUTH_ROLES_CLAIM="groups")
    client = env.app.test_client()
    token = tokens_for(client, "alice")["access_token"]
    assert claims_of(token)["groups"] == ["editor"]
    assert client.get("/api/editors", headers=bearer(token)).status_code == 200


def test_roles_claim_may_not_be_a_registered_claim(make_app):
    from flask_jwt_authentication.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="JWT_AUTH_ROLES_CLAIM"):
        make_app(JWT_AUTH_ROLES_CLAIM="sub")
