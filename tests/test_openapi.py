"""The OpenAPI document: a valid OpenAPI 3.1 document that matches the code, served
when enabled, adapted to each app's settings, and fuzzed with schemathesis.

``conftest.py`` also checks every response of the extension's endpoints in the
whole suite against it (``openapi_conformance.py``); the tests of that checker
are here too.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import jsonschema
import openapi_conformance
import pytest
import schemathesis
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import example_module
from conftest import tokens_for
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance
from schemathesis.specs.openapi.checks import response_headers_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance

from flask_jwt_authentication import errors
from flask_jwt_authentication import views
from flask_jwt_authentication.openapi import openapi_document

ROOT = Path(__file__).parent.parent
SHIPPED = ROOT / "flask_jwt_authentication" / "openapi.json"
DOCUMENT_PATH = f"{PREFIX}/openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def resolve(document: dict[str, t.Any], node: t.Any) -> t.Any:
    """``node`` with its local ``$ref`` chain followed."""
    while isinstance(node, dict) and "$ref" in node:
        target: t.Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def validator_for(document: dict[str, t.Any], schema: dict[str, t.Any]) -> t.Any:
    """A JSON Schema 2020-12 validator of ``schema`` whose ``#/...`` references
    resolve in ``document``."""
    return jsonschema.Draft202012Validator(
        {**schema, "components": document["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def operation(
    document: dict[str, t.Any], path: str, method: str = "post"
) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], document["paths"][path][method])


def response_schema(
    document: dict[str, t.Any], path: str, method: str, status: str
) -> dict[str, t.Any]:
    response = resolve(document, operation(document, path, method)["responses"][status])
    return t.cast(dict[str, t.Any], response["content"]["application/json"]["schema"])


# The document -------------------------------------------------------------------


def test_the_shipped_document_is_valid_openapi_3_1() -> None:
    document = json.loads(SHIPPED.read_text(encoding="utf-8"))
    validate(document)
    assert document["openapi"] == "3.1.0"


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"JWT_AUTH_OPENAPI": True},
        {"JWT_AUTH_REFRESH_COOKIE": True, "JWT_AUTH_URL_PREFIX": "/auth/"},
        {
            "JWT_AUTH_REFRESH_COOKIE": True,
            "JWT_AUTH_REFRESH_COOKIE_NAME": "__Host-rt.v1",
            "JWT_AUTH_REFRESH_COOKIE_CSRF_HEADER": "X-CSRF",
            "JWT_AUTH_OPENAPI": True,
        },
    ],
)
def test_every_adapted_document_is_valid(
    make_app: t.Callable[..., AppEnv], config: dict[str, t.Any]
) -> None:
    validate(openapi_document(make_app(**config).app))


def test_without_an_app_the_document_describes_the_defaults() -> None:
    document = openapi_document()
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    del shipped["paths"][DOCUMENT_PATH]  # served only when enabled
    shipped["info"]["version"] = document["info"]["version"]
    assert document == shipped


def test_in_an_app_context_the_document_is_that_apps(
    make_app: t.Callable[..., AppEnv],
) -> None:
    app = make_app(JWT_AUTH_URL_PREFIX="/auth").app
    with app.app_context():
        document = openapi_document()
    assert "/auth/tokens" in document["paths"]
    assert document == openapi_document(app)


def test_the_version_is_the_packages() -> None:
    version = importlib.metadata.version("flask_jwt_authentication")
    assert openapi_document()["info"]["version"] == version


def test_a_copy_is_returned_each_time() -> None:
    first = openapi_document()
    first["paths"].clear()
    assert openapi_document()["paths"]


def test_every_example_matches_its_schema() -> None:
    document = openapi_document()
    examples = [
        (media["schema"], media["example"])
        for body in document["components"]["requestBodies"].values()
        for media in body["content"].values()
        if "example" in media
    ] + [
        (schema, schema["example"])
        for schema in document["components"]["schemas"].values()
        if "example" in schema
    ]
    assert len(examples) >= 2
    for schema, example in examples:
        validator_for(document, schema).validate(example)


def test_the_error_codes_are_those_of_the_errors() -> None:
    """The enum of error codes lists every code the package can answer."""
    codes = {
        cls.error
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.JWTAuthError)
    }
    enum = openapi_document()["components"]["schemas"]["Error"]["properties"]
    assert set(enum["error"]["enum"]) == codes | {"server_error"}


def test_the_length_limits_are_the_codes() -> None:
    schemas = openapi_document()["components"]["schemas"]
    login_fields = schemas["LoginRequest"]["properties"]
    assert login_fields["username"]["maxLength"] == views.MAX_USERNAME_LENGTH
    assert login_fields["password"]["maxLength"] == views.MAX_PASSWORD_LENGTH
    assert schemas["RefreshToken"]["maxLength"] == views.MAX_REFRESH_TOKEN_LENGTH


def test_every_route_is_documented_with_its_methods(
    make_app: t.Callable[..., AppEnv],
) -> None:
    """The app's routes of the extension are the document's paths, and each path
    allows (``OPTIONS``) exactly the methods the document lists."""
    env = make_app(JWT_AUTH_OPENAPI=True)
    document = openapi_document(env.app)
    rules = {
        openapi_conformance.document_path(rule.rule)
        for rule in env.app.url_map.iter_rules()
        if rule.endpoint.startswith(openapi_conformance.ENDPOINT_PREFIX)
    }
    assert rules == set(document["paths"])
    client = env.app.test_client()
    for path, item in document["paths"].items():
        url = path.replace("{session_id}", "00000000-0000-0000-0000-000000000000")
        r = client.options(url)
        allowed = {m.strip() for m in r.headers["Allow"].split(",")}
        assert allowed == {m.upper() for m in item if m in HTTP_METHODS} | {"OPTIONS"}


def test_basic_authentication_guards_introspection_and_the_feed_alone() -> None:
    """RFC 7662 §2.1: the introspection endpoint authenticates its callers; the
    revocation feed takes the same clients."""
    document = openapi_document()
    scheme = document["components"]["securitySchemes"]["introspectionClient"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "basic")
    guarded = {
        (path, method)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if {"introspectionClient": []} in op.get("security", [])
    }
    assert guarded == {
        (f"{PREFIX}/introspect", "post"),
        (f"{PREFIX}/revocations", "get"),
    }


def test_the_bearer_scheme_guards_the_operations_that_need_a_token() -> None:
    document = openapi_document()
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {
        **scheme,
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    guarded = {
        (path, method)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if {"bearerAuth": []} in op.get("security", [])
    }
    assert guarded == {
        (f"{PREFIX}/logout", "post"),
        (f"{PREFIX}/sessions", "get"),
        (f"{PREFIX}/sessions", "delete"),
        (f"{PREFIX}/sessions/{{session_id}}", "delete"),
    }
    for path, method in guarded:
        responses = operation(document, path, method)["responses"]
        assert responses["401"] == {"$ref": "#/components/responses/InvalidToken"}


# Serving it -----------------------------------------------------------------------


def test_the_endpoint_serves_the_document_when_enabled(
    make_app: t.Callable[..., AppEnv],
) -> None:
    app = make_app(JWT_AUTH_OPENAPI=True).app
    r = app.test_client().get(DOCUMENT_PATH)
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    served = r.get_json()
    validate(served)
    assert served == openapi_document(app)
    assert DOCUMENT_PATH in served["paths"]


def test_no_endpoint_by_default(client: t.Any) -> None:
    assert client.get(DOCUMENT_PATH).status_code == 404
    assert DOCUMENT_PATH not in openapi_document()["paths"]


def test_the_document_follows_the_url_prefix(make_app: t.Callable[..., AppEnv]) -> None:
    """A client that knows only where the document is finds every endpoint."""
    env = make_app(JWT_AUTH_URL_PREFIX="/api/v2/auth", JWT_AUTH_OPENAPI=True)
    env.create_user("alice")
    client = env.app.test_client()
    assert client.get(DOCUMENT_PATH).status_code == 404
    document = client.get("/api/v2/auth/openapi.json").get_json()
    assert sorted(document["paths"]) == [
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/api/v2/auth/introspect",
        "/api/v2/auth/logout",
        "/api/v2/auth/openapi.json",
        "/api/v2/auth/refresh",
        "/api/v2/auth/revocations",
        "/api/v2/auth/revoke",
        "/api/v2/auth/sessions",
        "/api/v2/auth/sessions/{session_id}",
        "/api/v2/auth/tokens",
    ]
    by_id = {
        op["operationId"]: path
        for path, item in document["paths"].items()
        for op in item.values()
    }
    r = client.post(
        by_id["obtainTokens"], json={"username": "alice", "password": PASSWORD}
    )
    assert r.status_code == 200
    pair = r.get_json()
    r = client.post(
        by_id["refreshTokens"], json={"refresh_token": pair["refresh_token"]}
    )
    assert r.status_code == 200
    r = client.get(by_id["listSessions"], headers=bearer(r.get_json()["access_token"]))
    assert r.status_code == 200
    assert len(r.get_json()["sessions"]) == 1


def test_the_server_url_is_where_the_app_is_mounted(
    make_app: t.Callable[..., AppEnv],
) -> None:
    app = make_app(JWT_AUTH_OPENAPI=True).app
    client = app.test_client()
    served = client.get(DOCUMENT_PATH, base_url="http://localhost/mounted").get_json()
    assert served["servers"] == [{"url": "/mounted"}]
    assert client.get(DOCUMENT_PATH).get_json()["servers"] == [{"url": "/"}]
    assert openapi_document(app)["servers"] == [{"url": "/"}]
    app.config.update(SERVER_NAME="api.example.com", APPLICATION_ROOT="/v1")
    app.config["PREFERRED_URL_SCHEME"] = "https"
    assert openapi_document(app)["servers"] == [{"url": "https://api.example.com/v1"}]


def test_cookie_mode_documents_the_cookie_and_its_header(
    make_app: t.Callable[..., AppEnv],
) -> None:
    """Follow the cookie-mode document like a browser client would: the names
    come from the document, not from the configuration."""
    env = make_app(
        JWT_AUTH_REFRESH_COOKIE=True,
        JWT_AUTH_REFRESH_COOKIE_NAME="rt.v1",
        JWT_AUTH_REFRESH_COOKIE_CSRF_HEADER="X-From-Spa",
    )
    env.create_user("alice")
    document = openapi_document(env.app)
    tokens = operation(document, f"{PREFIX}/tokens")
    (login_header,) = [resolve(document, p) for p in tokens["parameters"]]
    assert login_header["in"] == "header"
    assert login_header["required"] is True
    refresh = operation(document, f"{PREFIX}/refresh")
    parameters = {
        p["in"]: p for p in (resolve(document, p) for p in refresh["parameters"])
    }
    cookie, header = parameters["cookie"]["name"], parameters["header"]["name"]
    assert (cookie, header) == ("rt.v1", "X-From-Spa")
    assert login_header["name"] == header
    assert resolve(document, refresh["requestBody"])["required"] is False
    pair_schema = response_schema(document, f"{PREFIX}/tokens", "post", "200")
    assert "refresh_token" not in resolve(document, pair_schema)["properties"]
    pair_response = resolve(document, tokens["responses"]["200"])
    set_cookie = resolve(document, pair_response["headers"]["Set-Cookie"])

    client = env.app.test_client()
    https = {"base_url": "https://localhost"}  # the cookie is Secure
    body = {"username": "alice", "password": PASSWORD}
    assert client.post(f"{PREFIX}/tokens", json=body, **https).status_code == 403
    r = client.post(f"{PREFIX}/tokens", json=body, headers={header: "1"}, **https)
    assert r.status_code == 200
    validator_for(document, pair_schema).validate(r.get_json())
    validator_for(document, set_cookie["schema"]).validate(r.headers["Set-Cookie"])
    assert r.headers["Set-Cookie"].startswith("rt.v1=")
    assert client.post(f"{PREFIX}/refresh", **https).status_code == 403
    refreshed = client.post(f"{PREFIX}/refresh", headers={header: "1"}, **https)
    assert refreshed.status_code == 200
    validator_for(document, pair_schema).validate(refreshed.get_json())


def test_without_cookie_mode_no_cookie_is_documented(client: t.Any) -> None:
    document = openapi_document(client.application)
    refresh = operation(document, f"{PREFIX}/refresh")
    assert "parameters" not in refresh
    assert resolve(document, refresh["requestBody"])["required"] is True
    pair = tokens_for(client)
    schema = response_schema(document, f"{PREFIX}/tokens", "post", "200")
    validator_for(document, schema).validate(pair)
    assert "refresh_token" in resolve(document, schema)["required"]


# The suite-wide check -------------------------------------------------------------


@pytest.fixture
def doctored(make_app: t.Callable[..., AppEnv]) -> tuple[AppEnv, dict[str, t.Any]]:
    """An app whose ``after_request`` hook changes responses as ``faults`` says."""
    env = make_app()
    env.create_user("alice")
    faults: dict[str, t.Any] = {}

    @env.app.after_request
    def tamper(response: t.Any) -> t.Any:
        if "status" in faults:
            response.status_code = faults["status"]
        for name in faults.get("drop_headers", ()):
            response.headers.pop(name, None)
        if "body" in faults:
            response.set_data(json.dumps(faults["body"]))
        return response

    return env, faults


def test_the_check_passes_conforming_responses(
    doctored: tuple[AppEnv, dict[str, t.Any]],
) -> None:
    env, _ = doctored
    client = env.app.test_client()
    with openapi_conformance.recording() as violations:
        pair = tokens_for(client)
        client.post(f"{PREFIX}/logout", headers=bearer(pair["access_token"]))
        client.put(f"{PREFIX}/logout")
        client.options(f"{PREFIX}/logout")
        client.head("/.well-known/jwks.json")
        client.delete(f"{PREFIX}/sessions/not-a-uuid")
    assert violations == []


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 418}, "status 418 is not documented"),
        ({"drop_headers": ["Cache-Control"]}, "the Cache-Control header is missing"),
        ({"drop_headers": ["Retry-After"]}, None),  # not in a 400 answer: fine
        ({"body": {"error": "invalid_grant"}}, "'error_description' is a required"),
        ({"body": {"error": "nope", "error_description": ""}}, "'nope' is not one of"),
    ],
)
def test_the_check_reports_what_the_document_does_not_allow(
    doctored: tuple[AppEnv, dict[str, t.Any]],
    fault: dict[str, t.Any],
    expected: str | None,
) -> None:
    env, faults = doctored
    faults.update(fault)
    with openapi_conformance.recording() as violations:
        r = env.app.test_client().post(f"{PREFIX}/tokens", json={})
    if expected is None:
        assert violations == []
        return
    assert all(
        v.startswith(f"POST {PREFIX}/tokens -> {r.status}: ") for v in violations
    )
    assert any(expected in v for v in violations), violations


def test_the_check_reports_a_wrong_allow_header(
    doctored: tuple[AppEnv, dict[str, t.Any]],
) -> None:
    env, faults = doctored
    faults["drop_headers"] = ["Allow"]
    with openapi_conformance.recording() as violations:
        env.app.test_client().get(f"{PREFIX}/tokens")
    assert any("Allow lists" in v for v in violations), violations


def test_the_check_ignores_the_apps_own_routes(
    doctored: tuple[AppEnv, dict[str, t.Any]],
) -> None:
    env, faults = doctored
    faults["status"] = 418
    with openapi_conformance.recording() as violations:
        assert env.app.test_client().get("/api/me").status_code == 418
        env.app.test_client().get(f"{PREFIX}/nowhere")
    assert violations == []


def test_the_check_covers_real_servers(
    doctored: tuple[AppEnv, dict[str, t.Any]], serve: t.Callable[[AppEnv], int]
) -> None:
    """Responses from another thread (a real server on 127.0.0.1) are checked."""
    import http.client

    env, faults = doctored
    port = serve(env)
    faults["drop_headers"] = ["Cache-Control"]
    with openapi_conformance.recording() as violations:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        conn.request("POST", f"{PREFIX}/tokens", body=b"{}")
        assert conn.getresponse().status == 400
        conn.close()
    assert violations == [
        f"POST {PREFIX}/tokens -> 400 BAD REQUEST: the Cache-Control header is missing"
    ]


# The example ----------------------------------------------------------------------


def test_the_example_writes_the_apps_document(tmp_path: Path) -> None:
    with (
        example_module("app.py") as example_app,
        example_module("openapi_document.py") as example,
    ):
        app: Flask = example_app.create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.db'}",
                "JWT_AUTH_URL_PREFIX": "/auth",
            }
        )
        try:
            example.write_document(app, tmp_path / "openapi.json")
        finally:
            with app.app_context():
                example_app.db.engine.dispose()
        written = json.loads((tmp_path / "openapi.json").read_text(encoding="utf-8"))
        validate(written)
        assert written == openapi_document(app)
        assert "/auth/tokens" in written["paths"]


def test_the_example_runs_as_a_script(tmp_path: Path) -> None:
    output = tmp_path / "openapi.json"
    environment = {
        **os.environ,
        "FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.db'}",
        "FLASK_JWT_AUTH_REFRESH_COOKIE": "true",
    }
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "openapi_document.py"), str(output)],
        env=environment,
        check=True,
        timeout=60,
    )
    written = json.loads(output.read_text(encoding="utf-8"))
    validate(written)
    assert "parameters" in written["paths"][f"{PREFIX}/refresh"]["post"]


# Schemathesis ---------------------------------------------------------------------

#: The document of an app with the default settings, as schemathesis sees it.
api = schemathesis.openapi.from_dict(openapi_document())


@pytest.mark.slow
@api.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    # One app serves every generated case of an operation, as in production.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_schemathesis_finds_no_nonconformance(case: t.Any, env: AppEnv) -> None:
    """Generated requests, valid and invalid, to each operation: never a server
    error, and every answer has a documented status, media type, headers and
    body. Each case logs in first, so its bearer token is live."""
    client = env.app.test_client()
    token = tokens_for(client)["access_token"]
    case.call_and_validate(
        app=env.app,
        headers=bearer(token),
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            response_headers_conformance,
        ],
    )
