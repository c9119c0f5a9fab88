"""HTTP conventions of the endpoints: a challenge on every 401 (RFC 7235 §3.1,
RFC 6750 §3), JSON 404 and 405 under the prefix, no Content-Type on a 204."""

from __future__ import annotations

import http.client
import json
import typing as t

import pytest
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import login
from conftest import tokens_for

from flask_jwt_authentication.errors import InvalidGrant
from flask_jwt_authentication.errors import InvalidToken
from flask_jwt_authentication.errors import MissingToken

REALM = 'realm="testapp"'


def challenge(response: t.Any) -> str:
    value = response.headers.get("WWW-Authenticate")
    assert value is not None, (response.status_code, response.get_data(as_text=True))
    return t.cast(str, value)


# Every 401 carries a challenge --------------------------------------------------------


def test_failed_log_in_carries_a_challenge(client: t.Any) -> None:
    for username, password in [("alice", "wrong"), ("nobody", "wrong")]:
        response = login(client, username, password)
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_grant"
        assert challenge(response) == (
            f'Bearer {REALM}, error="invalid_grant",'
            ' error_description="Invalid username or password."'
        )


def test_failed_refresh_carries_a_challenge(client: t.Any) -> None:
    refresh = tokens_for(client)["refresh_token"]
    response = client.post(f"{PREFIX}/refresh", json={"refresh_token": refresh})
    assert response.status_code == 200
    for presented in ["unknown-token-" + "x" * 30, refresh]:  # unknown, then reused
        response = client.post(f"{PREFIX}/refresh", json={"refresh_token": presented})
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_grant"
        assert challenge(response).startswith(f'Bearer {REALM}, error="invalid_grant"')


def test_every_401_of_the_endpoints_and_routes_carries_a_challenge(
    client: t.Any,
) -> None:
    calls = [
        ("POST", f"{PREFIX}/logout", {}),
        ("POST", f"{PREFIX}/logout", bearer("not.a.token")),
        ("GET", f"{PREFIX}/sessions", {}),
        ("DELETE", f"{PREFIX}/sessions", bearer("x")),
        ("GET", "/api/me", {}),
        ("GET", "/api/me", {"Authorization": "Basic YWxpY2U6cHc="}),
        ("GET", "/api/me", bearer("not.a.token")),
    ]
    for method, path, headers in calls:
        response = client.open(path, method=method, headers=headers)
        assert response.status_code == 401, (method, path)
        assert challenge(response).startswith(f"Bearer {REALM}")


def test_an_error_raised_elsewhere_still_has_a_challenge() -> None:
    """Without a realm (an error rendered outside the endpoints) the challenge
    still names the scheme and the error (RFC 6750 §3: the realm is optional)."""
    headers = dict(InvalidGrant("Nope.").get_headers())
    assert headers["WWW-Authenticate"] == (
        'Bearer error="invalid_grant", error_description="Nope."'
    )
    assert dict(MissingToken("x").get_headers())["WWW-Authenticate"] == "Bearer"
    with_realm = InvalidToken("Bad.").with_realm("api")
    assert dict(with_realm.get_headers())["WWW-Authenticate"] == (
        'Bearer realm="api", error="invalid_token", error_description="Bad."'
    )


# 404 and 405 under the prefix --------------------------------------------------------


@pytest.fixture
def routed(make_app: t.Any) -> AppEnv:
    """An app with a route of its own under the prefix (POST only), and its own
    404 page elsewhere."""
    env: AppEnv = make_app()
    env.create_user("alice")

    @env.app.post(f"{PREFIX}/custom")
    def custom() -> dict[str, str]:
        return {"ok": "yes"}

    @env.app.errorhandler(404)
    def not_found(error: t.Any) -> tuple[str, int]:
        return "the app's own page", 404

    return env


@pytest.mark.parametrize(
    "path",
    [
        f"{PREFIX}/nope",
        PREFIX,
        f"{PREFIX}/",
        f"{PREFIX}/sessions/a/b",
        f"{PREFIX}/tokens/extra",
    ],
)
def test_unknown_path_under_the_prefix_answers_json(routed: AppEnv, path: str) -> None:
    response = routed.app.test_client().get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "error": "not_found",
        "error_description": "No such endpoint.",
    }


def test_wrong_method_under_the_prefix_answers_json(routed: AppEnv) -> None:
    client = routed.app.test_client()
    for path, allow in [
        (f"{PREFIX}/custom", "OPTIONS, POST"),
        (f"{PREFIX}/tokens", "OPTIONS, POST"),
        (f"{PREFIX}/sessions", "DELETE, GET, OPTIONS"),
    ]:
        response = client.put(path)
        assert response.status_code == 405, path
        assert response.mimetype == "application/json"
        assert response.get_json()["error"] == "invalid_request"
        assert response.headers["Allow"] == allow
    assert client.post(f"{PREFIX}/custom").get_json() == {"ok": "yes"}


def test_the_apps_own_routes_keep_flasks_answers(routed: AppEnv) -> None:
    client = routed.app.test_client()
    response = client.get("/elsewhere")
    assert (response.status_code, response.get_data(as_text=True)) == (
        404,
        "the app's own page",
    )
    # A path that only starts like the prefix is not under it.
    assert client.get(PREFIX + "x").get_data(as_text=True) == "the app's own page"
    response = client.post("/api/me")
    assert response.status_code == 405
    assert response.mimetype == "text/html"


# 204 ---------------------------------------------------------------------------------


def test_204_carries_no_content_type(client: t.Any) -> None:
    pair = tokens_for(client)
    response = client.post(f"{PREFIX}/logout", headers=bearer(pair["access_token"]))
    assert response.status_code == 204
    assert "Content-Type" not in response.headers
    assert response.data == b""
    access = tokens_for(client)["access_token"]
    response = client.delete(f"{PREFIX}/sessions", headers=bearer(access))
    assert response.status_code == 204
    assert "Content-Type" not in response.headers


# Over a real HTTP server ------------------------------------------------------------


def raw_call(
    port: int,
    method: str,
    path: str,
    body: dict[str, t.Any] | None = None,
    **headers: str,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        data = None if body is None else json.dumps(body).encode()
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def test_conventions_over_a_real_server(env: AppEnv, serve: t.Any) -> None:
    port = serve(env)
    status, headers, body = raw_call(
        port, "POST", f"{PREFIX}/tokens", {"username": "alice", "password": "no"}
    )
    assert status == 401
    assert headers["WWW-Authenticate"].startswith(
        f'Bearer {REALM}, error="invalid_grant"'
    )
    assert json.loads(body)["error"] == "invalid_grant"

    status, headers, body = raw_call(port, "GET", f"{PREFIX}/nope")
    assert (status, headers["Content-Type"]) == (404, "application/json")
    assert json.loads(body)["error"] == "not_found"

    status, headers, body = raw_call(port, "PATCH", f"{PREFIX}/logout")
    assert (status, headers["Allow"]) == (405, "OPTIONS, POST")
    assert json.loads(body)["error"] == "invalid_request"

    status, headers, body = raw_call(
        port, "POST", f"{PREFIX}/tokens", {"username": "alice", "password": PASSWORD}
    )
    assert status == 200
    access = json.loads(body)["access_token"]
    status, headers, body = raw_call(
        port, "POST", f"{PREFIX}/logout", Authorization=f"Bearer {access}"
    )
    assert (status, body) == (204, b"")
    assert headers["Content-Type"] is None
