"""``GET /.well-known/jwks.json`` over HTTP (docs/keys.rst).

An independent verifier, PyJWT's ``PyJWKClient``, fetches the JWK Set from a real
server (``serve``) and verifies our access tokens with nothing else: for configured
keys and for stored keys after ``flask jwt keys rotate``.
"""

from __future__ import annotations

import base64
import json
import re
import typing as t
import urllib.request

import jwt
import pytest
from conftest import PREFIX
from conftest import AppEnv
from conftest import key_config
from conftest import tokens_for
from cryptography.fernet import Fernet

KEK = Fernet.generate_key().decode()
JWKS = "/.well-known/jwks.json"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
VERIFIED = ["RS256", "ES256", "PS256", "EdDSA"]

MakeApp = t.Callable[..., AppEnv]


def header_of(token: str) -> dict[str, t.Any]:
    part = token.split(".")[0]
    return t.cast(
        dict[str, t.Any],
        json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))),
    )


def keys_cli(env: AppEnv, *args: str) -> t.Any:
    return env.app.test_cli_runner().invoke(args=["jwt", "keys", *args])


def rotate(env: AppEnv) -> str:
    result = keys_cli(env, "rotate")
    assert result.exit_code == 0, result.output
    match = re.search(r"Key (\S+) now signs\.", result.output)
    assert match is not None
    return match.group(1)


def generate(env: AppEnv, *args: str) -> str:
    result = keys_cli(env, "generate", *args)
    assert result.exit_code == 0, result.output
    match = re.search(r"Generated \S+ key (\S+) ", result.output)
    assert match is not None
    return match.group(1)


def app_for(make_app: MakeApp, algorithm: str, **config: t.Any) -> AppEnv:
    env = make_app(
        **key_config(algorithm),
        JWT_AUTH_KEY_ENCRYPTION_KEY=KEK,
        JWT_AUTH_KEYS_REFRESH_INTERVAL=1,
        **config,
    )
    env.create_user("alice")
    return env


def fetch(port: int) -> tuple[dict[str, t.Any], t.Any]:
    """The JWK Set a real client gets, and the response headers."""
    url = f"http://127.0.0.1:{port}{JWKS}"
    with urllib.request.urlopen(url, timeout=15) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "application/json"
        return json.loads(response.read()), response.headers


def verify_independently(port: int, token: str, algorithm: str) -> dict[str, t.Any]:
    """Verify ``token`` with PyJWT, knowing nothing but the JWKS URL."""
    client = jwt.PyJWKClient(f"http://127.0.0.1:{port}{JWKS}", cache_keys=False)
    signing_key = client.get_signing_key_from_jwt(token)
    assert signing_key.key_id == header_of(token)["kid"]
    return t.cast(
        dict[str, t.Any],
        jwt.decode(
            token,
            signing_key.key,
            algorithms=[algorithm],
            issuer="testapp",
            options={"require": ["exp", "iat", "nbf", "iss", "sub", "jti"]},
        ),
    )


def check_entry(entry: dict[str, t.Any], algorithm: str) -> None:
    assert entry["alg"] == algorithm
    assert entry["use"] == "sig"
    assert isinstance(entry["kid"], str)
    assert entry["kid"]
    assert entry["kty"] in ("RSA", "EC", "OKP")
    assert not PRIVATE_MEMBERS & set(entry), entry


@pytest.mark.parametrize("algorithm", VERIFIED)
def test_independent_verifier_accepts_configured_key(
    make_app: MakeApp, serve: t.Any, algorithm: str
) -> None:
    env = app_for(make_app, algorithm)
    port = serve(env)
    token = tokens_for(env.app.test_client())["access_token"]
    claims = verify_independently(port, token, algorithm)
    assert claims["uid"] == 1
    assert claims["sub"] == "1"
    jwks, _ = fetch(port)
    assert len(jwks["keys"]) == 1
    check_entry(jwks["keys"][0], algorithm)
    assert jwks["keys"][0]["kid"] == header_of(token)["kid"]
    # A tampered token is refused by the same verifier.
    head, _, signature = token.split(".")
    forged_payload = base64.urlsafe_b64encode(
        json.dumps({**claims, "uid": 2, "sub": "2"}).encode()
    ).rstrip(b"=")
    with pytest.raises(jwt.InvalidSignatureError):
        verify_independently(
            port, ".".join([head, forged_payload.decode(), signature]), algorithm
        )


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", VERIFIED)
def test_independent_verifier_accepts_stored_key(
    make_app: MakeApp, serve: t.Any, algorithm: str
) -> None:
    """After ``keys rotate`` the stored key signs; the JWKS publishes it, and the
    configured key's tokens still verify from the JWKS (it is now retiring)."""
    env = app_for(make_app, algorithm)
    port = serve(env)
    client = env.app.test_client()
    before = tokens_for(client)["access_token"]
    kid = rotate(env)
    after = tokens_for(client)["access_token"]
    assert header_of(after) == {"alg": algorithm, "kid": kid, "typ": "at+jwt"}
    verify_independently(port, after, algorithm)
    verify_independently(port, before, algorithm)
    jwks, _ = fetch(port)
    assert {k["kid"] for k in jwks["keys"]} == {kid, header_of(before)["kid"]}
    for entry in jwks["keys"]:
        check_entry(entry, algorithm)


def test_jwks_lists_current_next_and_retiring_only(
    make_app: MakeApp, serve: t.Any
) -> None:
    env = app_for(make_app, "ES256")
    port = serve(env)
    configured = header_of(tokens_for(env.app.test_client())["access_token"])["kid"]
    retired = rotate(env)
    retiring = rotate(env)
    current = rotate(env)
    upcoming = generate(env)
    result = keys_cli(env, "retire", retired)
    assert result.exit_code == 0, result.output
    jwks, headers = fetch(port)
    kids = [k["kid"] for k in jwks["keys"]]
    assert len(kids) == len(set(kids))
    # The configured key is retiring too, since a stored key is current.
    assert set(kids) == {current, upcoming, retiring, configured}
    assert retired not in kids
    assert kids[0] == current
    for entry in jwks["keys"]:
        check_entry(entry, "ES256")
    # Keys of another algorithm are not published.
    generate(env, "--algorithm", "EdDSA")
    assert {k["kid"] for k in fetch(port)[0]["keys"]} == set(kids)

    cache_control = headers["Cache-Control"]
    match = re.search(r"max-age=(\d+)", cache_control)
    assert match is not None
    assert int(match.group(1)) > 0
    assert "no-store" not in cache_control


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_jwks_is_empty(make_app: MakeApp, serve: t.Any, algorithm: str) -> None:
    env = app_for(make_app, algorithm)
    port = serve(env)
    assert fetch(port)[0] == {"keys": []}
    # Stored HMAC keys are secret too.
    generate(env)
    rotate(env)
    jwks, headers = fetch(port)
    assert jwks == {"keys": []}
    assert "max-age=" in headers["Cache-Control"]
    result = keys_cli(env, "export-public")
    assert json.loads(result.output) == {"keys": []}


def test_export_public_prints_the_served_set(make_app: MakeApp, serve: t.Any) -> None:
    env = app_for(make_app, "EdDSA")
    port = serve(env)
    rotate(env)
    generate(env)
    result = keys_cli(env, "export-public")
    assert result.exit_code == 0, result.output
    exported = json.loads(result.output)
    assert exported == fetch(port)[0]
    assert len(exported["keys"]) == 3
    assert "PRIVATE" not in result.output


def test_jwks_of_a_client_before_login(make_app: MakeApp, serve: t.Any) -> None:
    """The endpoint needs no credentials, only GET (and HEAD)."""
    env = app_for(make_app, "ES256")
    client = env.app.test_client()
    assert client.get(JWKS).status_code == 200
    assert client.head(JWKS).status_code == 200
    response = client.post(JWKS)
    assert response.status_code == 405
    assert response.get_json()["error"]
    # The login endpoint is elsewhere: the JWKS path is fixed, not prefixed.
    assert client.get(PREFIX + JWKS).status_code == 404
