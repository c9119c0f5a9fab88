"""DPoP (RFC 9449) with a client built on jwcrypto: log-in, calls, replay,
refresh, refresh with another key, the bound token as Bearer, for each proof
algorithm the server accepts, on every database backend.

The extension verifies proofs with PyJWT; test_dpop_flow.py signs them with JWS
made by hand. Here another JOSE implementation does the whole client side: it
makes the keys, exports their public JWK, signs the proofs and computes the RFC
7638 thumbprint, which must be the access token's ``cnf.jkt``. A proof that only
one implementation's reading of the RFCs accepts, or a thumbprint computed from
other members or another serialisation, fails here. The ``ath`` of a proof is
computed with hashlib as RFC 9449 §4.2 says, not with the extension's helper.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import typing as t
import uuid

import pytest
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from jwcrypto import jwk
from jwcrypto import jwt
from jwcrypto.common import base64url_decode

BASE = "http://localhost"
ME = "/api/me"

#: jwcrypto's key generation parameters for each proof algorithm the server
#: accepts (``dpop.ALGORITHMS``).
KEY_PARAMETERS: dict[str, dict[str, t.Any]] = {
    "ES256": {"kty": "EC", "crv": "P-256"},
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
    "ES384": {"kty": "EC", "crv": "P-384"},
    "PS256": {"kty": "RSA", "size": 2048},
    "RS256": {"kty": "RSA", "size": 2048},
}


class Holder:
    """A client's key pair, made and used by jwcrypto alone."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.key: t.Any = jwk.JWK.generate(**KEY_PARAMETERS[algorithm])

    @property
    def jkt(self) -> str:
        """jwcrypto's RFC 7638 thumbprint of the key (SHA-256)."""
        return str(self.key.thumbprint())

    def proof(self, method: str, path: str, **claims: t.Any) -> str:
        """A proof for ``method`` on ``BASE + path``, signed by jwcrypto."""
        header = {
            "typ": "dpop+jwt",
            "alg": self.algorithm,
            "jwk": self.key.export_public(as_dict=True),
        }
        body = {
            "htm": method,
            "htu": BASE + path,
            "iat": int(time.time()),
            "jti": str(uuid.uuid4()),
            **claims,
        }
        token = jwt.JWT(header=header, claims=body)
        token.make_signed_token(self.key)
        return str(token.serialize())


def ath(access_token: str) -> str:
    """base64url(SHA-256(ASCII of the access token)), no padding: RFC 9449 §4.2."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_claims(token: str) -> dict[str, t.Any]:
    """The payload of a JWT, decoded with jwcrypto's base64url (not verified)."""
    return t.cast(dict[str, t.Any], json.loads(base64url_decode(token.split(".")[1])))


@pytest.fixture
def dpop_env(make_app: t.Callable[..., AppEnv], database_url: str) -> AppEnv:
    env = make_app(database_url, JWT_AUTH_DPOP="allowed")
    env.create_user("alice")
    return env


@pytest.fixture(params=list(KEY_PARAMETERS))
def algorithm(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.param)


def log_in(http: t.Any, key: Holder) -> t.Any:
    return http.post(
        f"{PREFIX}/tokens",
        json={"username": "alice", "password": PASSWORD},
        headers={"DPoP": key.proof("POST", f"{PREFIX}/tokens")},
    )


def call_headers(token: str, key: Holder) -> dict[str, str]:
    return {
        "Authorization": f"DPoP {token}",
        "DPoP": key.proof("GET", ME, ath=ath(token)),
    }


def refresh(http: t.Any, refresh_token: str, key: Holder) -> t.Any:
    return http.post(
        f"{PREFIX}/refresh",
        json={"refresh_token": refresh_token},
        headers={"DPoP": key.proof("POST", f"{PREFIX}/refresh")},
    )


def test_ath_matches_rfc9449_example() -> None:
    # RFC 9449 §7.1: the access token and the ath of the proof sent with it.
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert ath(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


def test_log_in_binds_the_jwcrypto_thumbprint(dpop_env: AppEnv, algorithm: str) -> None:
    http = dpop_env.app.test_client()
    key = Holder(algorithm)
    response = log_in(http, key)
    assert response.status_code == 200, response.get_data(as_text=True)
    pair = response.get_json()
    assert pair["token_type"] == "DPoP"
    assert token_claims(pair["access_token"])["cnf"] == {"jkt": key.jkt}


def test_a_call_with_a_jwcrypto_proof_and_its_replay(
    dpop_env: AppEnv, algorithm: str
) -> None:
    http = dpop_env.app.test_client()
    key = Holder(algorithm)
    token = log_in(http, key).get_json()["access_token"]
    headers = call_headers(token, key)
    response = http.get(ME, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["username"] == "alice"
    again = http.get(ME, headers=headers)
    assert again.status_code == 401
    assert again.get_json()["error"] == "invalid_dpop_proof"
    assert "used before" in again.get_json()["error_description"]


def test_a_refresh_with_the_same_key_keeps_the_binding(
    dpop_env: AppEnv, algorithm: str
) -> None:
    http = dpop_env.app.test_client()
    key = Holder(algorithm)
    pair = log_in(http, key).get_json()
    response = refresh(http, pair["refresh_token"], key)
    assert response.status_code == 200, response.get_data(as_text=True)
    new = response.get_json()
    assert new["token_type"] == "DPoP"
    assert new["access_token"] != pair["access_token"]
    assert new["refresh_token"] != pair["refresh_token"]
    assert token_claims(new["access_token"])["cnf"] == {"jkt": key.jkt}
    answer = http.get(ME, headers=call_headers(new["access_token"], key))
    assert answer.status_code == 200, answer.get_data(as_text=True)


def test_a_refresh_with_another_key_is_refused(
    dpop_env: AppEnv, algorithm: str
) -> None:
    http = dpop_env.app.test_client()
    owner, thief = Holder(algorithm), Holder(algorithm)
    pair = log_in(http, owner).get_json()
    stolen = refresh(http, pair["refresh_token"], thief)
    assert stolen.status_code == 401
    assert stolen.get_json()["error"] == "invalid_grant"
    # The owner carries on.
    assert refresh(http, pair["refresh_token"], owner).status_code == 200


def test_the_bound_token_as_bearer_is_refused(dpop_env: AppEnv, algorithm: str) -> None:
    http = dpop_env.app.test_client()
    token = log_in(http, Holder(algorithm)).get_json()["access_token"]
    response = http.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
