"""DPoP over HTTP (RFC 9449): log-in, calls, refresh, replay, theft with another
key, wrong method or URL, stale proof, on every database backend.

The client signs its proofs with the cryptography package and JWS made by hand
(tests/test_dpop.py's ``Client``), an implementation independent of PyJWT, which
the extension verifies them with.
"""

from __future__ import annotations

import time
import typing as t
import uuid

import jwt as pyjwt
import pytest
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from test_dpop import Client

from flask_jwt_authentication.dpop import access_token_hash

BASE = "http://localhost"
ME = "/api/me"


@pytest.fixture
def dpop_env(make_app: t.Callable[..., AppEnv], database_url: str) -> AppEnv:
    env = make_app(database_url, JWT_AUTH_DPOP="allowed")
    env.create_user("alice")
    return env


def proof(client: Client, method: str, path: str, **claims: t.Any) -> str:
    return client.proof(
        method, BASE + path, iat=int(time.time()), jti=str(uuid.uuid4()), **claims
    )


def log_in(http: t.Any, key: Client | None = None) -> t.Any:
    headers = {"DPoP": proof(key, "POST", f"{PREFIX}/tokens")} if key else {}
    return http.post(
        f"{PREFIX}/tokens",
        json={"username": "alice", "password": PASSWORD},
        headers=headers,
    )


def call(http: t.Any, token: str, key: Client, **proof_claims: t.Any) -> t.Any:
    claims = {"ath": access_token_hash(token), **proof_claims}
    return http.get(
        ME,
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": proof(key, "GET", ME, **claims),
        },
    )


def refresh(http: t.Any, refresh_token: str, key: Client | None) -> t.Any:
    headers = {"DPoP": proof(key, "POST", f"{PREFIX}/refresh")} if key else {}
    return http.post(
        f"{PREFIX}/refresh", json={"refresh_token": refresh_token}, headers=headers
    )


def test_the_whole_flow(dpop_env: AppEnv) -> None:
    http = dpop_env.app.test_client()
    key = Client()
    response = log_in(http, key)
    assert response.status_code == 200, response.get_data(as_text=True)
    pair = response.get_json()
    assert pair["token_type"] == "DPoP"
    claims = pyjwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": key.jkt}
    assert call(http, pair["access_token"], key).status_code == 200
    # Refresh with a proof by the same key: a new bound pair.
    response = refresh(http, pair["refresh_token"], key)
    assert response.status_code == 200, response.get_data(as_text=True)
    new = response.get_json()
    assert new["token_type"] == "DPoP"
    assert call(http, new["access_token"], key).status_code == 200


def test_a_bound_token_sent_as_bearer_is_refused(dpop_env: AppEnv) -> None:
    http = dpop_env.app.test_client()
    pair = log_in(http, Client()).get_json()
    response = http.get(ME, headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="testapp", error="invalid_token"')
    assert 'DPoP realm="testapp", algs="ES256 EdDSA' in challenge


def test_theft_with_another_key_is_refused(dpop_env: AppEnv) -> None:
    http = dpop_env.app.test_client()
    owner, thief = Client(), Client()
    pair = log_in(http, owner).get_json()
    response = call(http, pair["access_token"], thief)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_dpop_proof"
    assert "another key" in response.get_json()["error_description"]
    assert (
        'DPoP realm="testapp", error="invalid_dpop_proof"'
        in (response.headers["WWW-Authenticate"])
    )
    stolen = refresh(http, pair["refresh_token"], thief)
    assert stolen.status_code == 401
    assert stolen.get_json()["error"] == "invalid_grant"
    unproven = refresh(http, pair["refresh_token"], None)
    assert unproven.status_code == 400
    assert unproven.get_json()["error"] == "invalid_dpop_proof"
    # The owner carries on.
    assert refresh(http, pair["refresh_token"], owner).status_code == 200


def test_an_old_refresh_token_without_the_key_does_not_end_the_session(
    dpop_env: AppEnv,
) -> None:
    """Reuse detection ends a session when its consumed refresh token comes
    back; a bound token coming back without its key proves nothing, so it is
    refused and the session carries on (RFC 9449 §5)."""
    http = dpop_env.app.test_client()
    owner, thief = Client(), Client()
    first = log_in(http, owner).get_json()
    second = refresh(http, first["refresh_token"], owner).get_json()
    for key in (thief, None):
        replayed = refresh(http, first["refresh_token"], key)
        assert replayed.status_code in (400, 401)
        assert "used" not in replayed.get_json()["error_description"]
    assert call(http, second["access_token"], owner).status_code == 200
    assert refresh(http, second["refresh_token"], owner).status_code == 200
    # The owner's key replaying the old token is reuse: the session ends.
    assert refresh(http, first["refresh_token"], owner).status_code == 401
    assert call(http, second["access_token"], owner).status_code == 401


def test_a_replayed_proof_is_refused(dpop_env: AppEnv) -> None:
    http = dpop_env.app.test_client()
    key = Client()
    pair = log_in(http, key).get_json()
    token = pair["access_token"]
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": proof(key, "GET", ME, ath=access_token_hash(token)),
    }
    assert http.get(ME, headers=headers).status_code == 200
    again = http.get(ME, headers=headers)
    assert again.status_code == 401
    assert "used before" in again.get_json()["error_description"]
    login_proof = proof(key, "POST", f"{PREFIX}/tokens")
    body = {"username": "alice", "password": PASSWORD}
    first = http.post(f"{PREFIX}/tokens", json=body, headers={"DPoP": login_proof})
    assert first.status_code == 200
    second = http.post(f"{PREFIX}/tokens", json=body, headers={"DPoP": login_proof})
    assert second.status_code == 400
    assert second.get_json()["error"] == "invalid_dpop_proof"


@pytest.mark.parametrize(
    ("method", "path", "claims", "message"),
    [
        ("POST", ME, {}, "another method"),
        ("GET", "/api/other", {}, "another URI"),
        ("GET", ME, {"iat": 1}, "too old"),
        ("GET", ME, {"ath": "x"}, "not bound to this access token"),
    ],
)
def test_a_wrong_proof_on_a_call_is_refused(
    dpop_env: AppEnv, method: str, path: str, claims: dict[str, t.Any], message: str
) -> None:
    http = dpop_env.app.test_client()
    key = Client()
    token = log_in(http, key).get_json()["access_token"]
    values = {"ath": access_token_hash(token), **claims}
    iat = values.pop("iat", int(time.time()))
    bad = key.proof(method, BASE + path, iat=iat, jti=str(uuid.uuid4()), **values)
    response = http.get(ME, headers={"Authorization": f"DPoP {token}", "DPoP": bad})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_dpop_proof"
    assert message in response.get_json()["error_description"]


def test_a_stale_proof_at_log_in_is_refused(dpop_env: AppEnv) -> None:
    http = dpop_env.app.test_client()
    key = Client()
    stale = key.proof("POST", BASE + f"{PREFIX}/tokens", iat=int(time.time()) - 120)
    before = dpop_env.row_counts()
    response = http.post(
        f"{PREFIX}/tokens",
        json={"username": "alice", "password": PASSWORD},
        headers={"DPoP": stale},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_dpop_proof"
    assert dpop_env.row_counts() == before


def test_allowed_mode_still_issues_bearer_tokens(dpop_env: AppEnv) -> None:
    http = dpop_env.app.test_client()
    pair = log_in(http).get_json()
    assert pair["token_type"] == "Bearer"
    response = http.get(ME, headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert response.status_code == 200
    # An unbound token with the DPoP scheme is refused.
    response = call(http, pair["access_token"], Client())
    assert response.status_code == 401
    assert "not bound" in response.get_json()["error_description"]


def test_required_mode_takes_dpop_only(
    make_app: t.Callable[..., AppEnv], database_url: str
) -> None:
    env = make_app(database_url, JWT_AUTH_DPOP="required")
    env.create_user("alice")
    http = env.app.test_client()
    response = log_in(http)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_dpop_proof"
    key = Client("EdDSA")
    pair = log_in(http, key).get_json()
    assert call(http, pair["access_token"], key).status_code == 200
    anonymous = http.get(ME)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith('DPoP realm="testapp"')
    metadata = http.get("/.well-known/oauth-authorization-server").get_json()
    assert metadata["dpop_signing_alg_values_supported"][:2] == ["ES256", "EdDSA"]


def test_without_dpop_a_proof_is_ignored(make_app: t.Callable[..., AppEnv]) -> None:
    env = make_app()
    env.create_user("alice")
    http = env.app.test_client()
    pair = log_in(http, Client()).get_json()
    assert pair["token_type"] == "Bearer"
    assert "cnf" not in pyjwt.decode(
        pair["access_token"], options={"verify_signature": False}
    )
    metadata = http.get("/.well-known/oauth-authorization-server").get_json()
    assert "dpop_signing_alg_values_supported" not in metadata


def test_behind_a_proxy_the_signed_url_is_the_public_one(dpop_env: AppEnv) -> None:
    """With ProxyFix the app compares a proof's htu with the public https URL
    the client used; without it, the refusal says which URL the app saw."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    public = "https://api.example.com"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com"}
    key = Client()
    body = {"username": "alice", "password": PASSWORD}

    def log_in_publicly(http: t.Any) -> t.Any:
        proof = key.proof(
            "POST",
            public + f"{PREFIX}/tokens",
            iat=int(time.time()),
            jti=str(uuid.uuid4()),
        )
        return http.post(
            f"{PREFIX}/tokens", json=body, headers={"DPoP": proof, **forwarded}
        )

    refused = log_in_publicly(dpop_env.app.test_client())
    assert refused.status_code == 400
    description = refused.get_json()["error_description"]
    assert f"http://localhost{PREFIX}/tokens" in description
    assert "ProxyFix" in description
    dpop_env.app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        dpop_env.app.wsgi_app, x_proto=1, x_host=1
    )
    response = log_in_publicly(dpop_env.app.test_client())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["token_type"] == "DPoP"
