"""DPoP helpers checked against the RFCs' own examples."""

from __future__ import annotations

import pytest

from flask_jwt_authentication.dpop import access_token_hash
from flask_jwt_authentication.dpop import thumbprint

#: RFC 7638 §3.1, the RSA key of its example.
RFC7638_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuh"
    "DR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h"
    "4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO"
    "pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFC"
    "ur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_thumbprint_matches_rfc7638_example() -> None:
    assert thumbprint(RFC7638_KEY) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprint_refuses_unknown_or_incomplete_keys() -> None:
    with pytest.raises(ValueError, match="key type"):
        thumbprint({"kty": "oct", "k": "c2VjcmV0"})
    with pytest.raises(ValueError, match="'e'"):
        thumbprint({"kty": "RSA", "n": "AQAB"})


def test_access_token_hash_matches_rfc9449_example() -> None:
    # RFC 9449 §7.1: the access token and the ath of the proof sent with it.
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


# Proofs (RFC 9449 §4.3), made by an implementation of their own ---------------------
#
# The proofs below are signed with the cryptography package directly, JWS by hand
# (RFC 7515 §3.1), not with PyJWT, which the extension verifies them with.

import base64  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import typing as t  # noqa: E402

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

from flask_jwt_authentication.dpop import InvalidProof  # noqa: E402
from flask_jwt_authentication.dpop import normalized_uri  # noqa: E402
from flask_jwt_authentication.dpop import verify_proof  # noqa: E402

NOW = 1_900_000_000
URI = "https://api.example.com/jwt-authentication/api/auth/tokens"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Client:
    """A client holding a P-256 (or Ed25519) key, signing proofs itself."""

    def __init__(self, kind: str = "ES256") -> None:
        self.kind = kind
        if kind == "ES256":
            self.key: t.Any = ec.generate_private_key(ec.SECP256R1())
            numbers = self.key.public_key().public_numbers()
            self.jwk = {
                "kty": "EC",
                "crv": "P-256",
                "x": _b64(numbers.x.to_bytes(32, "big")),
                "y": _b64(numbers.y.to_bytes(32, "big")),
            }
        else:
            self.key = ed25519.Ed25519PrivateKey.generate()
            raw = self.key.public_key().public_bytes_raw()
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}

    @property
    def jkt(self) -> str:
        members = {k: self.jwk[k] for k in sorted(self.jwk)}
        canonical = json.dumps(members, separators=(",", ":")).encode()
        return _b64(hashlib.sha256(canonical).digest())

    def sign(self, signing_input: bytes) -> bytes:
        if self.kind == "ES256":
            r, s = decode_dss_signature(
                self.key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
            )
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return t.cast(bytes, self.key.sign(signing_input))

    def proof(
        self,
        method: str = "POST",
        uri: str = URI,
        *,
        iat: int = NOW,
        jti: str = "proof-1",
        header: dict[str, t.Any] | None = None,
        **claims: t.Any,
    ) -> str:
        alg = "ES256" if self.kind == "ES256" else "EdDSA"
        head = {"typ": "dpop+jwt", "alg": alg, "jwk": self.jwk, **(header or {})}
        body = {"htm": method, "htu": uri, "iat": iat, "jti": jti, **claims}
        signing_input = (
            _b64(json.dumps(head).encode()) + "." + _b64(json.dumps(body).encode())
        )
        return signing_input + "." + _b64(self.sign(signing_input.encode()))


def check(proof: str, **options: t.Any) -> t.Any:
    arguments = {"method": "POST", "uri": URI, "now": NOW, "window": 60} | options
    return verify_proof(proof, **arguments)


@pytest.mark.parametrize("kind", ["ES256", "EdDSA"])
def test_a_valid_proof_gives_the_keys_thumbprint(kind: str) -> None:
    client = Client(kind)
    done = check(client.proof())
    assert (done.jkt, done.jti, done.iat) == (client.jkt, "proof-1", NOW)


def test_a_resource_request_proof_is_bound_to_its_access_token() -> None:
    client = Client()
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2ln"
    ath = _b64(hashlib.sha256(token.encode()).digest())
    proof = client.proof("GET", "https://api.example.com/api/me", ath=ath)
    options = {"method": "GET", "uri": "https://api.example.com/api/me"}
    assert check(proof, access_token=token, **options).jkt == client.jkt
    with pytest.raises(InvalidProof, match="not bound to this access token"):
        check(proof, access_token=token + "x", **options)
    unbound = client.proof("GET", "https://api.example.com/api/me")
    with pytest.raises(InvalidProof, match="not bound"):
        check(unbound, access_token=token, **options)


def test_the_uri_is_compared_normalised() -> None:
    client = Client()
    proof = client.proof(uri="HTTPS://API.example.com:443" + URI[23:] + "?x=1#f")
    assert check(proof).jkt == client.jkt
    assert normalized_uri("http://h:80") == "http://h/"
    assert normalized_uri("http://h:8080/a?b") == "http://h:8080/a"
    with pytest.raises(InvalidProof, match="another URI"):
        check(client.proof(uri=URI + "/other"))
    with pytest.raises(InvalidProof, match="another URI"):
        check(client.proof(uri="http" + URI[5:]))
    with pytest.raises(InvalidProof, match="another URI"):
        check(client.proof(uri="https://api.example.com:port/x"))


def _with_private_d(client: Client) -> str:
    return client.proof(header={"jwk": {**client.jwk, "d": _b64(b"secret")}})


def _foreign_key(client: Client) -> str:
    return client.proof(header={"jwk": Client().jwk})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda c: c.proof("GET"), "another method"),
        (lambda c: c.proof(iat=NOW - 61), "too old"),
        (lambda c: c.proof(iat=NOW + 61), "from the future"),
        (lambda c: c.proof(iat="now"), "not a number"),
        (lambda c: c.proof(iat=True), "not a number"),
        (lambda c: c.proof(iat=NOW - 60.5), "too old"),
        (lambda c: c.proof(jti=""), "jti"),
        (lambda c: c.proof(jti=7), "jti"),
        (lambda c: c.proof(header={"typ": "JWT"}), "typ"),
        (lambda c: c.proof(header={"alg": "none"}), "algorithm"),
        (lambda c: c.proof(header={"alg": "HS256"}), "algorithm"),
        (lambda c: c.proof(header={"jwk": None}), "public key"),
        (lambda c: c.proof(header={"crit": ["exp"]}), "critical"),
        (lambda c: c.proof(header={"kid": ""}), "signature or key"),
        (_with_private_d, "public key"),
        (_foreign_key, "signature or key"),
        (lambda c: c.proof()[:-4] + "AAAA", "signature or key"),
        (lambda c: "not a jwt", "not a JWT"),
        (lambda c: "", "missing"),
        (lambda c: "a" * 9000, "too long"),
    ],
)
def test_a_proof_failing_a_check_is_refused(
    make: t.Callable[[Client], str], message: str
) -> None:
    with pytest.raises(InvalidProof, match=message):
        check(make(Client()))


def test_a_kid_header_and_a_fractional_iat_are_accepted() -> None:
    """RFC 9449 does not forbid a kid next to the jwk, and RFC 7519's
    NumericDate may have a fraction (a client sending time.time())."""
    client = Client()
    done = check(client.proof(header={"kid": "my-device-key"}, iat=NOW - 0.25))
    assert (done.jkt, done.iat) == (client.jkt, NOW)
    with pytest.raises(InvalidProof, match="signature or key"):
        check(client.proof(header={"kid": 7}))


def test_a_header_seen_before_still_needs_a_good_signature() -> None:
    """The checks of a header and its key are kept per header; the signature,
    the claims and the accepted algorithms are checked on every proof."""
    client = Client("EdDSA")
    check(client.proof(jti="first"))
    forged = client.proof(jti="second")[:-4] + "AAAA"
    with pytest.raises(InvalidProof, match="signature or key"):
        check(forged)
    with pytest.raises(InvalidProof, match="another method"):
        check(client.proof("GET", jti="third"))
    with pytest.raises(InvalidProof, match="algorithm"):
        check(client.proof(jti="fourth"), algorithms=("ES256",))


def test_the_accepted_algorithms_are_configurable() -> None:
    client = Client("EdDSA")
    with pytest.raises(InvalidProof, match="algorithm"):
        check(client.proof(), algorithms=("ES256",))
