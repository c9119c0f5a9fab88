"""Property tests: whatever arrives, the token parser refuses it cleanly and the
endpoints answer a JSON 4xx, never a server error.

Together the endpoint properties send more than 10,000 generated requests.
"""

from __future__ import annotations

import base64
import json
import typing as t

import pytest
from conftest import PREFIX
from conftest import AppEnv
from conftest import build_app
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from flask_jwt_authentication import config
from flask_jwt_authentication import keys
from flask_jwt_authentication import tokens
from flask_jwt_authentication.tokens import TokenError

#: Minutes of generated requests, on SQLite whatever the engine: the main run only.
pytestmark = pytest.mark.slow

SETTINGS = config.load_settings({"SECRET_KEY": "k" * 64}, "fuzz")
KEYSET = keys.load_keyset({"SECRET_KEY": "k" * 64}, "HS256")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@settings(max_examples=1500, deadline=None)
@given(st.text(max_size=300))
def test_parser_refuses_any_text(text: str) -> None:
    with pytest.raises(TokenError):
        tokens.decode(text, SETTINGS, KEYSET)


@settings(max_examples=1500, deadline=None)
@given(header=json_values, payload=json_values, signature=st.binary(max_size=64))
def test_parser_refuses_well_formed_forgeries(header, payload, signature) -> None:
    token = ".".join(
        [
            b64(json.dumps(header).encode()),
            b64(json.dumps(payload).encode()),
            b64(signature),
        ]
    )
    with pytest.raises(TokenError):
        tokens.decode(token, SETTINGS, KEYSET)


@settings(max_examples=1000, deadline=None)
@given(
    claims=st.dictionaries(
        st.sampled_from([*sorted(tokens.RESERVED_CLAIMS), "x"]), json_values
    )
)
def test_signed_claims_are_accepted_or_refused_cleanly(claims) -> None:
    """Correctly signed tokens with arbitrary claims: only TokenError or success."""
    token = tokens.encode(claims, KEYSET.current)
    try:
        decoded = tokens.decode(token, SETTINGS, KEYSET)
    except TokenError:
        return
    assert decoded == claims


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[AppEnv]:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    env = build_app(f"sqlite:///{path}")
    env.create_user("alice")
    env.app.config["PROPAGATE_EXCEPTIONS"] = False
    yield env
    with env.app.app_context():
        env.db.engine.dispose()


def assert_clean(response: t.Any, method: str = "POST") -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400 and method != "HEAD":
        body = response.get_json()
        assert set(body) == {"error", "error_description"}


ENDPOINTS = [
    f"{PREFIX}/tokens",
    f"{PREFIX}/refresh",
    f"{PREFIX}/logout",
    f"{PREFIX}/revoke",
    f"{PREFIX}/introspect",
]
FUZZ = settings(
    max_examples=2600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), body=json_values)
def test_endpoints_any_json(fuzz_env: AppEnv, path: str, body: t.Any) -> None:
    response = fuzz_env.app.test_client().post(path, json=body)
    assert_clean(response)


@FUZZ
@given(
    path=st.sampled_from(ENDPOINTS),
    username=st.one_of(st.text(max_size=300), json_values),
    password=st.one_of(st.text(max_size=1100), json_values),
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
def test_endpoints_credential_shapes(
    fuzz_env: AppEnv, path: str, username, password, extra
) -> None:
    body = {
        **extra,
        "username": username,
        "password": password,
        "refresh_token": username,
    }
    assert_clean(fuzz_env.app.test_client().post(path, json=body))


@FUZZ
@given(
    path=st.sampled_from([*ENDPOINTS, "/api/me", "/api/optional", "/api/admin"]),
    data=st.binary(max_size=400),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
    ),
    authorization=st.one_of(
        st.none(),
        st.text(
            alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200
        ),
        st.builds(
            lambda s: "Bearer " + s,
            st.text(
                alphabet=st.characters(min_codepoint=33, max_codepoint=126),
                max_size=300,
            ),
        ),
    ),
)
def test_endpoints_raw_bytes_and_headers(
    fuzz_env: AppEnv, path: str, data: bytes, content_type: str, authorization
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    method = "GET" if path.startswith("/api/") else "POST"
    response = fuzz_env.app.test_client().open(
        path, method=method, data=data, content_type=content_type, headers=headers
    )
    assert_clean(response)


@FUZZ
@given(
    method=st.sampled_from(
        ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"]
    ),
    path=st.sampled_from([*ENDPOINTS, f"{PREFIX}/sessions", "/.well-known/jwks.json"]),
)
def test_endpoints_any_method(fuzz_env: AppEnv, method: str, path: str) -> None:
    assert_clean(fuzz_env.app.test_client().open(path, method=method), method)
