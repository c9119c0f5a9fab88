"""Access tokens as a client, another service or an attacker sees them.

Pure unit tests of :mod:`flask_jwt_authentication.tokens`: settings and keys come from
plain mappings, the clock from the ``now=`` parameter. See docs/tokens.rst.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
import typing as t
from pathlib import Path

import jwt
import pytest
from conftest import ALGORITHMS
from conftest import EXTRA_ALGORITHMS
from conftest import key_config
from conftest import key_path

from flask_jwt_authentication import config
from flask_jwt_authentication import keys
from flask_jwt_authentication import tokens
from flask_jwt_authentication.keys import Key
from flask_jwt_authentication.keys import KeySet
from flask_jwt_authentication.tokens import TokenError

ALL_ALGORITHMS = ALGORITHMS + EXTRA_ALGORITHMS
NOW = 1_700_000_000
SID = "0b6f7a1e-5b8c-4c1e-9d2a-3f4e5a6b7c8d"
#: A sentinel for :func:`claims_for`: drop the claim.
DROP = object()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def load(algorithm: str = "HS256", **settings: t.Any) -> tuple[config.Settings, KeySet]:
    """Settings (issuer ``app``) and the key set for ``algorithm``'s test key."""
    conf = key_config(algorithm) | settings
    return config.load_settings(conf, "app"), keys.load_keyset(conf, algorithm)


def claims_for(settings: config.Settings, **changes: t.Any) -> dict[str, t.Any]:
    """Valid claims issued at ``NOW`` for uid 42, with ``changes`` applied."""
    claims = tokens.access_claims(settings, 42, SID, now=NOW)
    for name, value in changes.items():
        if value is DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def sign_raw(header: t.Any, payload: t.Any, key: Key) -> str:
    """A compact JWS over arbitrary header and payload (dicts or raw bytes/str)."""

    def segment(part: t.Any) -> str:
        if isinstance(part, str):
            part = part.encode("utf-8")
        if not isinstance(part, bytes):
            part = json.dumps(part, separators=(",", ":")).encode("utf-8")
        return b64(part)

    signing_input = segment(header) + "." + segment(payload)
    signature = key.jws_algorithm.sign(signing_input.encode("ascii"), key.signing_key)
    return signing_input + "." + b64(signature)


def header_for(key: Key, **changes: t.Any) -> dict[str, t.Any]:
    header = {"alg": key.algorithm, "kid": key.kid, "typ": "at+jwt"}
    for name, value in changes.items():
        if value is DROP:
            header.pop(name, None)
        else:
            header[name] = value
    return header


def refused(
    token: object,
    settings: config.Settings,
    keyset: KeySet,
    match: str,
    now: float = NOW,
) -> TokenError:
    with pytest.raises(TokenError, match=match) as info:
        tokens.decode(token, settings, keyset, now=now)
    # Nothing of HTTP here: the decorator answers it with a 401 invalid_token.
    assert not hasattr(info.value, "code")
    return info.value


@pytest.fixture
def hs256() -> tuple[config.Settings, KeySet]:
    return load("HS256")


# --- Issuing ------------------------------------------------------------------


def test_access_claims_carry_the_contract_claims() -> None:
    settings, _ = load("HS256", JWT_AUTH_ACCESS_TOKEN_TTL=600)
    claims = tokens.access_claims(settings, 42, SID, now=NOW)
    assert claims == {
        "iss": "app",
        "sub": "42",
        "uid": 42,
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 600,
        "jti": claims["jti"],
        "sid": SID,
        "auth_time": NOW,
    }
    assert "aud" not in claims


def test_access_claims_write_the_first_configured_audience() -> None:
    settings, _ = load("HS256", JWT_AUTH_AUDIENCE=["api", "web"])
    assert tokens.access_claims(settings, "alice", SID, now=NOW)["aud"] == "api"


def test_every_token_gets_a_fresh_128_bit_jti() -> None:
    settings, _ = load("HS256")
    jtis = {tokens.access_claims(settings, 1, SID)["jti"] for _ in range(500)}
    assert len(jtis) == 500
    assert all(len(unb64(jti)) == 16 for jti in jtis)


def test_reserved_claims_cover_every_claim_the_extension_writes() -> None:
    settings, _ = load("HS256", JWT_AUTH_AUDIENCE="api")
    assert set(tokens.access_claims(settings, 1, SID)) <= tokens.RESERVED_CLAIMS


# --- Round trip and interoperability ------------------------------------------


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_round_trip(algorithm: str) -> None:
    settings, keyset = load(algorithm)
    claims = claims_for(settings, role="admin")
    token = tokens.encode(claims, keyset.current)
    assert tokens.decode(token, settings, keyset, now=NOW) == claims


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_header_has_alg_typ_and_kid(algorithm: str) -> None:
    settings, keyset = load(algorithm)
    token = tokens.encode(claims_for(settings), keyset.current)
    header = json.loads(unb64(token.split(".")[0]))
    assert header == {"alg": algorithm, "typ": "at+jwt", "kid": keyset.current.kid}
    assert jwt.get_unverified_header(token) == header


def _pyjwt_verifying_key(algorithm: str) -> t.Any:
    if algorithm.startswith("HS"):
        return key_config(algorithm)["JWT_AUTH_SECRET_KEY"]
    private = Path(key_config(algorithm)["JWT_AUTH_PRIVATE_KEY"])
    return private.with_name(private.name.replace(".pem", ".pub.pem")).read_text()


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_pyjwt_verifies_our_tokens(algorithm: str) -> None:
    settings, keyset = load(algorithm, JWT_AUTH_AUDIENCE="api")
    claims = tokens.access_claims(settings, 42, SID, now=int(time.time()))
    token = tokens.encode(claims, keyset.current)
    decoded = jwt.decode(
        token,
        _pyjwt_verifying_key(algorithm),
        algorithms=[algorithm],
        audience="api",
        issuer="app",
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )
    assert decoded == claims


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_tokens_signed_by_pyjwt_are_accepted(algorithm: str) -> None:
    settings, keyset = load(algorithm)
    claims = claims_for(settings)
    key = keyset.current
    token = jwt.encode(
        claims,
        key.signing_key,
        algorithm=algorithm,
        headers={"kid": key.kid, "typ": "at+jwt"},
    )
    # As a verify-only resource server reads another issuer's tokens: PyJWT does
    # not normalise ECDSA signatures (test_ecdsa_tokens_have_one_spelling).
    assert tokens.decode(token, settings, keyset, now=NOW, canonical=False) == claims


# --- Signature ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_tampered_payload_is_refused(algorithm: str) -> None:
    settings, keyset = load(algorithm)
    token = tokens.encode(claims_for(settings), keyset.current)
    header, _, signature = token.split(".")
    forged = b64(json.dumps(claims_for(settings, uid=1, sub="1")).encode())
    refused(f"{header}.{forged}.{signature}", settings, keyset, "signature is invalid")


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_tampered_signature_is_refused(algorithm: str) -> None:
    settings, keyset = load(algorithm)
    token = tokens.encode(claims_for(settings), keyset.current)
    head, _, signature = token.rpartition(".")
    raw = bytearray(unb64(signature))
    raw[len(raw) // 2 + 1] ^= 0x01
    refused(f"{head}.{b64(bytes(raw))}", settings, keyset, "signature is invalid")


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "ES512"])
def test_ecdsa_tokens_have_one_spelling(algorithm: str) -> None:
    """Every token signed here has the low-S signature; its high-S twin
    (r, n - s), equally valid for ECDSA, is refused by the issuing application
    and accepted by a verify-only resource server."""
    settings, keyset = load(algorithm)
    order = tokens._EC_ORDERS[algorithm]
    for _ in range(24):  # a signer that does not normalise: high-S half the time
        token = tokens.encode(claims_for(settings), keyset.current)
        head, _, signature = token.rpartition(".")
        raw = unb64(signature)
        size = len(raw) // 2
        s = int.from_bytes(raw[size:], "big")
        assert s <= order // 2
        twin = f"{head}.{b64(raw[:size] + (order - s).to_bytes(size, 'big'))}"
        refused(twin, settings, keyset, "canonical form")
        claims = tokens.decode(token, settings, keyset, now=NOW)
        assert tokens.decode(twin, settings, keyset, now=NOW, canonical=False) == (
            claims
        )


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_truncated_signature_is_refused(algorithm: str) -> None:
    settings, keyset = load(algorithm)
    token = tokens.encode(claims_for(settings), keyset.current)
    head, _, signature = token.rpartition(".")
    short = b64(unb64(signature)[:-1])
    refused(f"{head}.{short}", settings, keyset, "signature is invalid")


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256", "EdDSA"])
def test_missing_signature_is_refused(algorithm: str) -> None:
    settings, keyset = load(algorithm)
    token = tokens.encode(claims_for(settings), keyset.current)
    head = token.rpartition(".")[0]
    refused(head + ".", settings, keyset, "malformed")


def test_token_signed_by_another_key_with_our_kid_is_refused() -> None:
    settings, keyset = load("RS256")
    other = keys.asymmetric_key("RS256", str(key_path("rsa2048-other")))
    forged = dataclasses.replace(other, kid=keyset.current.kid)
    token = tokens.encode(claims_for(settings), forged)
    refused(token, settings, keyset, "signature is invalid")


def test_token_signed_with_another_hmac_secret_is_refused() -> None:
    settings, keyset = load("HS256")
    other = keys.hmac_key("HS256", "x" * 64, source="JWT_AUTH_SECRET_KEY")
    forged = dataclasses.replace(other, kid=keyset.current.kid)
    refused(tokens.encode(claims_for(settings), forged), settings, keyset, "signature")


# --- Algorithm ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(hs256: tuple[config.Settings, KeySet], alg: str) -> None:
    settings, keyset = hs256
    header = b64(json.dumps(header_for(keyset.current, alg=alg)).encode())
    payload = b64(json.dumps(claims_for(settings)).encode())
    # Unsigned, as RFC 7519 §6.1 writes it: an empty signature.
    refused(f"{header}.{payload}.", settings, keyset, "malformed")
    # And with a signature that would verify were the algorithm taken from the token.
    signed = tokens.encode(claims_for(settings), keyset.current).split(".")[2]
    refused(f"{header}.{payload}.{signed}", settings, keyset, "unexpected algorithm")


@pytest.mark.parametrize(
    ("configured", "used"),
    [
        ("HS256", "HS512"),
        ("HS512", "HS256"),
        ("RS256", "RS512"),
        ("RS256", "PS256"),
        ("PS256", "RS256"),
        ("ES256", "ES384"),
    ],
)
def test_token_with_another_algorithm_is_refused_even_with_the_right_key(
    configured: str, used: str
) -> None:
    settings, keyset = load(configured)
    # Same key material, other algorithm, honest signature.
    other = dataclasses.replace(keyset.current, algorithm=used)
    token = tokens.encode(claims_for(settings), other)
    assert jwt.get_unverified_header(token)["alg"] == used
    refused(token, settings, keyset, "unexpected algorithm")


def test_hs256_token_keyed_with_the_rsa_public_key_is_refused() -> None:
    """The classic RS256/HS256 confusion (RFC 8725 §2.1)."""
    settings, keyset = load("RS256")
    public_pem = key_path("rsa2048").with_name("rsa2048.pub.pem").read_bytes()
    header = b64(json.dumps(header_for(keyset.current, alg="HS256")).encode())
    payload = b64(json.dumps(claims_for(settings)).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    for secret in (public_pem, public_pem.strip()):
        mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
        refused(f"{header}.{payload}.{b64(mac)}", settings, keyset, "unexpected alg")
        # Claiming RS256 while carrying the HMAC fails on the signature itself.
        rs_header = b64(json.dumps(header_for(keyset.current)).encode())
        rs_input = f"{rs_header}.{payload}".encode("ascii")
        mac = hmac.new(secret, rs_input, hashlib.sha256).digest()
        refused(f"{rs_header}.{payload}.{b64(mac)}", settings, keyset, "signature")


@pytest.mark.parametrize("alg", [None, "", 256, ["HS256"], {"alg": "HS256"}, "hs256"])
def test_missing_or_malformed_alg_is_refused(
    hs256: tuple[config.Settings, KeySet], alg: object
) -> None:
    settings, keyset = hs256
    header = header_for(keyset.current, alg=DROP if alg is None else alg)
    token = sign_raw(header, claims_for(settings), keyset.current)
    refused(token, settings, keyset, "unexpected algorithm")


# --- Key id -------------------------------------------------------------------


def test_unknown_kid_is_refused(hs256: tuple[config.Settings, KeySet]) -> None:
    settings, keyset = hs256
    token = sign_raw(
        header_for(keyset.current, kid="nope"), claims_for(settings), keyset.current
    )
    refused(token, settings, keyset, "unknown key")


def test_token_of_a_key_we_never_had_is_refused() -> None:
    settings, keyset = load("RS256")
    other = keys.asymmetric_key("RS256", str(key_path("rsa2048-other")))
    refused(tokens.encode(claims_for(settings), other), settings, keyset, "unknown key")


def test_oversized_kid_is_refused_even_if_a_key_has_it(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    long_kid = "k" * (keys.MAX_KID_LENGTH + 1)
    key = dataclasses.replace(keyset.current, kid=long_kid)
    token = tokens.encode(claims_for(settings), key)
    refused(token, settings, KeySet(current=key), "unknown key")
    # A kid of exactly the maximum length is still looked up.
    fitting = dataclasses.replace(keyset.current, kid="k" * keys.MAX_KID_LENGTH)
    token = tokens.encode(claims_for(settings), fitting)
    assert tokens.decode(token, settings, KeySet(current=fitting), now=NOW)


@pytest.mark.parametrize("kid", [0, 1.5, True, ["kid"], {"kid": "x"}, None, ""])
def test_non_string_kid_is_refused(
    hs256: tuple[config.Settings, KeySet], kid: object
) -> None:
    settings, keyset = hs256
    token = sign_raw(
        header_for(keyset.current, kid=kid), claims_for(settings), keyset.current
    )
    refused(token, settings, keyset, "kid header is not a non-empty string")


def test_token_without_kid_is_tried_against_current_and_retiring_keys() -> None:
    settings, _ = load("HS256")
    current = keys.hmac_key("HS256", "c" * 64, source="JWT_AUTH_SECRET_KEY")
    retiring = keys.hmac_key("HS256", "r" * 64, source="JWT_AUTH_SECRET_KEY")
    stranger = keys.hmac_key("HS256", "s" * 64, source="JWT_AUTH_SECRET_KEY")
    keyset = KeySet(current=current, retiring=(retiring,))
    claims = claims_for(settings)
    for key in (current, retiring):
        token = sign_raw(header_for(key, kid=DROP), claims, key)
        assert tokens.decode(token, settings, keyset, now=NOW) == claims
        # And by its own kid.
        assert tokens.decode(tokens.encode(claims, key), settings, keyset, now=NOW)
    token = sign_raw(header_for(stranger, kid=DROP), claims, stranger)
    refused(token, settings, keyset, "signature is invalid")


def test_kid_of_the_retiring_key_does_not_verify_with_the_current_one() -> None:
    settings, _ = load("HS256")
    current = keys.hmac_key("HS256", "c" * 64, source="JWT_AUTH_SECRET_KEY")
    retiring = keys.hmac_key("HS256", "r" * 64, source="JWT_AUTH_SECRET_KEY")
    keyset = KeySet(current=current, retiring=(retiring,))
    forged = dataclasses.replace(current, kid=retiring.kid)
    refused(tokens.encode(claims_for(settings), forged), settings, keyset, "signature")


# --- Critical headers ---------------------------------------------------------


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "exp"])
def test_crit_header_is_refused(
    hs256: tuple[config.Settings, KeySet], crit: object
) -> None:
    settings, keyset = hs256
    header = header_for(keyset.current, crit=crit, exp=NOW + 60, b64=True)
    token = sign_raw(header, claims_for(settings), keyset.current)
    refused(token, settings, keyset, "critical")


def test_unknown_non_critical_header_is_ignored(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    header = header_for(keyset.current, cty="JWT", x5u="https://attacker.example/")
    claims = claims_for(settings)
    token = sign_raw(header, claims, keyset.current)
    assert tokens.decode(token, settings, keyset, now=NOW) == claims


# --- Time claims --------------------------------------------------------------


def test_token_is_valid_until_the_second_before_exp(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings), keyset.current)
    exp = NOW + settings.access_token_ttl
    assert tokens.decode(token, settings, keyset, now=exp - 1)
    assert tokens.decode(token, settings, keyset, now=exp - 0.001)
    refused(token, settings, keyset, "expired", now=exp)
    refused(token, settings, keyset, "expired", now=exp + 3600)


def test_leeway_extends_exp() -> None:
    settings, keyset = load("HS256", JWT_AUTH_LEEWAY=30)
    token = tokens.encode(claims_for(settings), keyset.current)
    exp = NOW + settings.access_token_ttl
    assert tokens.decode(token, settings, keyset, now=exp + 29)
    refused(token, settings, keyset, "expired", now=exp + 30)


def test_fractional_exp_is_a_numeric_date(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings, exp=NOW + 10.5), keyset.current)
    assert tokens.decode(token, settings, keyset, now=NOW + 10.4)
    refused(token, settings, keyset, "expired", now=NOW + 10.5)


def test_nbf_in_the_future_is_refused(hs256: tuple[config.Settings, KeySet]) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings, nbf=NOW + 60), keyset.current)
    refused(token, settings, keyset, "not valid yet", now=NOW)
    refused(token, settings, keyset, "not valid yet", now=NOW + 59)
    assert tokens.decode(token, settings, keyset, now=NOW + 60)


def test_leeway_applies_to_nbf() -> None:
    settings, keyset = load("HS256", JWT_AUTH_LEEWAY=30)
    token = tokens.encode(claims_for(settings, nbf=NOW + 30), keyset.current)
    assert tokens.decode(token, settings, keyset, now=NOW)
    token = tokens.encode(claims_for(settings, nbf=NOW + 31), keyset.current)
    refused(token, settings, keyset, "not valid yet", now=NOW)


def test_iat_in_the_future_is_refused(hs256: tuple[config.Settings, KeySet]) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings, iat=NOW + 60), keyset.current)
    refused(token, settings, keyset, "issued in the future", now=NOW)
    assert tokens.decode(token, settings, keyset, now=NOW + 60)


def test_leeway_applies_to_iat() -> None:
    settings, keyset = load("HS256", JWT_AUTH_LEEWAY=30)
    token = tokens.encode(claims_for(settings, iat=NOW + 30), keyset.current)
    assert tokens.decode(token, settings, keyset, now=NOW)
    token = tokens.encode(claims_for(settings, iat=NOW + 31), keyset.current)
    refused(token, settings, keyset, "issued in the future", now=NOW)


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    ("value", "match"),
    [
        (DROP, "has no"),
        (None, "has no"),
        ("1700000900", "not a NumericDate"),
        (True, "not a NumericDate"),
        (False, "not a NumericDate"),
        ([NOW], "not a NumericDate"),
        ({"$date": NOW}, "not a NumericDate"),
        (10**400, "not a NumericDate"),
        (-(10**400), "not a NumericDate"),
    ],
    ids=[
        "missing",
        "null",
        "string",
        "true",
        "false",
        "list",
        "object",
        "huge",
        "-huge",
    ],
)
def test_malformed_time_claim_is_refused(
    hs256: tuple[config.Settings, KeySet], name: str, value: object, match: str
) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings, **{name: value}), keyset.current)
    refused(token, settings, keyset, f"{name}.*{match}|{match}.*{name}")


@pytest.mark.parametrize("literal", ["1e400", "-1e400"])
def test_infinite_exp_is_refused(
    hs256: tuple[config.Settings, KeySet], literal: str
) -> None:
    settings, keyset = hs256
    body = json.dumps(claims_for(settings, exp="EXP")).replace('"EXP"', literal)
    token = sign_raw(header_for(keyset.current), body, keyset.current)
    refused(token, settings, keyset, "exp claim is not a NumericDate")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_literals_are_refused(
    hs256: tuple[config.Settings, KeySet], literal: str
) -> None:
    settings, keyset = hs256
    body = json.dumps(claims_for(settings, exp="EXP")).replace('"EXP"', literal)
    token = sign_raw(header_for(keyset.current), body, keyset.current)
    refused(token, settings, keyset, "payload is not valid JSON")


# --- Issuer and audience ------------------------------------------------------


@pytest.mark.parametrize("iss", [DROP, None, "other", "App", "app ", ["app"], ""])
def test_wrong_or_missing_issuer_is_refused(
    hs256: tuple[config.Settings, KeySet], iss: object
) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings, iss=iss), keyset.current)
    refused(token, settings, keyset, "another issuer")


@pytest.mark.parametrize(
    ("configured", "aud"),
    [
        ("api", "api"),
        ("api", ["api"]),
        ("api", ["other", "api"]),
        (["api", "web"], "web"),
        (["api", "web"], ["web"]),
        (["api", "web"], ["other", "api"]),
    ],
)
def test_token_for_a_configured_audience_is_accepted(
    configured: object, aud: object
) -> None:
    settings, keyset = load("HS256", JWT_AUTH_AUDIENCE=configured)
    claims = claims_for(settings, aud=aud)
    token = tokens.encode(claims, keyset.current)
    assert tokens.decode(token, settings, keyset, now=NOW) == claims


@pytest.mark.parametrize(
    ("configured", "aud"),
    [
        ("api", DROP),
        ("api", None),
        ("api", "other"),
        ("api", "API"),
        ("api", ["other"]),
        ("api", []),
        ("api", ""),
        ("api", 1),
        ("api", {"api": True}),
        ("api", [["api"]]),
        (["api", "web"], "other"),
        (["api", "web"], DROP),
    ],
)
def test_token_for_another_or_no_audience_is_refused(
    configured: object, aud: object
) -> None:
    settings, keyset = load("HS256", JWT_AUTH_AUDIENCE=configured)
    token = tokens.encode(claims_for(settings, aud=aud), keyset.current)
    refused(token, settings, keyset, "another audience")


@pytest.mark.parametrize("aud", ["api", ["api"], [], ""])
def test_token_with_aud_is_refused_when_no_audience_is_configured(
    hs256: tuple[config.Settings, KeySet], aud: object
) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings, aud=aud), keyset.current)
    refused(token, settings, keyset, "another audience")


# --- typ ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ", ["at+jwt", "AT+JWT", "At+Jwt", "application/at+jwt", "Application/AT+JWT"]
)
def test_access_token_typ_is_accepted_case_insensitively(
    hs256: tuple[config.Settings, KeySet], typ: str
) -> None:
    settings, keyset = hs256
    claims = claims_for(settings)
    token = tokens.encode(claims, keyset.current, typ=typ)
    assert tokens.decode(token, settings, keyset, now=NOW) == claims


@pytest.mark.parametrize(
    "typ", [DROP, None, "JWT", "jwt", "", "at+jwt ", "rt+jwt", "application/jwt", 1]
)
def test_other_or_missing_typ_is_refused(
    hs256: tuple[config.Settings, KeySet], typ: object
) -> None:
    settings, keyset = hs256
    token = sign_raw(
        header_for(keyset.current, typ=typ), claims_for(settings), keyset.current
    )
    refused(token, settings, keyset, "not an access token")


# --- Required claims ----------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("sub", DROP),
        ("sub", 42),
        ("sub", None),
        ("sub", ""),
        ("sub", ["42"]),
        ("sub", "x" * 256),
        ("uid", DROP),
        ("uid", None),
        ("uid", 42.0),
        ("uid", [42]),
        ("uid", True),
        ("uid", {"id": 42}),
        ("uid", 43),
        ("uid", "43"),
        ("jti", DROP),
        ("jti", ""),
        ("jti", 5),
        ("jti", "j" * 256),
        ("sid", DROP),
        ("sid", ""),
        ("sid", 5),
        ("sid", "not-a-uuid"),
        ("sid", SID.upper()),
        ("sid", SID.replace("-", "")),
        ("sid", "{" + SID + "}"),
        ("sid", "urn:uuid:" + SID),
    ],
)
def test_missing_or_wrongly_typed_claim_is_refused(
    hs256: tuple[config.Settings, KeySet], claim: str, value: object
) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings, **{claim: value}), keyset.current)
    refused(token, settings, keyset, f"{claim} claim is missing or invalid")


@pytest.mark.parametrize("uid", ["alice", 0, 7, "7"])
def test_uid_matching_sub_is_accepted(
    hs256: tuple[config.Settings, KeySet], uid: str | int
) -> None:
    settings, keyset = hs256
    claims = tokens.access_claims(settings, uid, SID, now=NOW)
    assert claims["sub"] == str(uid)
    token = tokens.encode(claims, keyset.current)
    assert tokens.decode(token, settings, keyset, now=NOW)["uid"] == uid


# --- JSON ---------------------------------------------------------------------


def test_duplicate_member_in_header_is_refused(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    kid = keyset.current.kid
    header = f'{{"alg":"HS256","kid":"{kid}","typ":"JWT","typ":"at+jwt"}}'
    token = sign_raw(header, claims_for(settings), keyset.current)
    refused(token, settings, keyset, "header is not valid JSON")


@pytest.mark.parametrize("member", ['"uid":1', '"sub":"1"', '"exp":99999999999'])
def test_duplicate_member_in_payload_is_refused(
    hs256: tuple[config.Settings, KeySet], member: str
) -> None:
    settings, keyset = hs256
    body = json.dumps(claims_for(settings), separators=(",", ":"))
    token = sign_raw(
        header_for(keyset.current), body[:-1] + "," + member + "}", keyset.current
    )
    refused(token, settings, keyset, "payload is not valid JSON")


def test_duplicate_member_in_a_nested_object_is_refused(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    body = json.dumps(claims_for(settings, extra="X")).replace(
        '"X"', '{"a": 1, "a": 2}'
    )
    token = sign_raw(header_for(keyset.current), body, keyset.current)
    refused(token, settings, keyset, "payload is not valid JSON")


@pytest.mark.parametrize("payload", ["[1, 2]", '"claims"', "42", "null", "true"])
def test_payload_that_is_not_an_object_is_refused(
    hs256: tuple[config.Settings, KeySet], payload: str
) -> None:
    settings, keyset = hs256
    token = sign_raw(header_for(keyset.current), payload, keyset.current)
    refused(token, settings, keyset, "payload is not a JSON object")


def test_header_that_is_not_an_object_is_refused(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    token = sign_raw(["HS256"], claims_for(settings), keyset.current)
    refused(token, settings, keyset, "header is not a JSON object")


@pytest.mark.parametrize(
    "payload",
    [
        b'{"sub":"\xff"}',
        b'{"sub":"\xc3\x28"}',
        b'{"sub":"\xed\xa0\x80"}',
        b"\xef\xbb\xbf{}",
        b"",
        b"{",
        b'{"a":1}garbage',
    ],
    ids=["ff", "bad-continuation", "surrogate", "bom", "empty", "open", "trailing"],
)
def test_payload_that_is_not_utf8_json_is_refused(
    hs256: tuple[config.Settings, KeySet], payload: bytes
) -> None:
    settings, keyset = hs256
    token = sign_raw(header_for(keyset.current), payload, keyset.current)
    refused(token, settings, keyset, "malformed|payload is not valid JSON")


def test_header_that_is_not_utf8_is_refused(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    token = sign_raw(
        b'{"alg":"HS256","x":"\xff"}', claims_for(settings), keyset.current
    )
    refused(token, settings, keyset, "header is not valid JSON")


def test_deeply_nested_payload_is_refused_cleanly(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    token = sign_raw(header_for(keyset.current), "[" * 5000, keyset.current)
    refused(token, settings, keyset, "payload is not valid JSON")


# --- Encoding -----------------------------------------------------------------


def _token_with_url_safe_chars(settings: config.Settings, key: Key) -> str:
    """A token whose signature contains ``-`` or ``_`` (HMAC is deterministic)."""
    for i in range(1000):
        token = tokens.encode(claims_for(settings, jti=f"jti-{i}"), key)
        signature = token.rsplit(".", 1)[1]
        if "-" in signature or "_" in signature:
            return token
    raise AssertionError("no signature with - or _ found")


def test_standard_base64_alphabet_is_refused(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    token = _token_with_url_safe_chars(settings, keyset.current)
    assert tokens.decode(token, settings, keyset, now=NOW)
    head, _, signature = token.rpartition(".")
    standard = signature.replace("-", "+").replace("_", "/")
    refused(f"{head}.{standard}", settings, keyset, "malformed")


@pytest.mark.parametrize("segment", [0, 1, 2])
def test_padded_segment_is_refused(
    hs256: tuple[config.Settings, KeySet], segment: int
) -> None:
    settings, keyset = hs256
    for i in range(4):
        parts = tokens.encode(claims_for(settings, pad="x" * i), keyset.current).split(
            "."
        )
        if len(parts[segment]) % 4:
            break
    parts[segment] += "=" * (-len(parts[segment]) % 4)
    refused(".".join(parts), settings, keyset, "malformed")


@pytest.mark.parametrize("algorithm", ["HS256", "ES256"])
def test_nonzero_trailing_bits_in_the_signature_are_refused(algorithm: str) -> None:
    """One encoding per token: no malleable spare bits (RFC 4648 §3.5)."""
    settings, keyset = load(algorithm)
    token = tokens.encode(claims_for(settings), keyset.current)
    head, _, signature = token.rpartition(".")
    assert len(signature) % 4 in (2, 3)  # the last character has spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    altered = signature[:-1] + alphabet[last + 1]
    # A lenient decoder reads the same signature bytes from the altered text.
    assert unb64(altered) == unb64(signature)
    refused(f"{head}.{altered}", settings, keyset, "malformed")


@pytest.mark.parametrize("junk", [" ", "\n", "*", "=", "é", "\x00", "."])
def test_characters_outside_base64url_are_refused(
    hs256: tuple[config.Settings, KeySet], junk: str
) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings), keyset.current)
    header, payload, signature = token.split(".")
    for forged in (
        f"{header}{junk}.{payload}.{signature}",
        f"{header}.{junk}{payload}.{signature}",
        f"{header}.{payload}.{signature}{junk}",
        f"{junk}{token}",
    ):
        refused(forged, settings, keyset, "malformed")


def test_segment_of_impossible_length_is_refused(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings), keyset.current)
    head, _, signature = token.rpartition(".")
    assert len(signature) % 4 == 3
    for extra in ("AA", "AAAAAA"):  # 4n+1 characters cannot be base64
        refused(f"{head}.{signature}{extra}", settings, keyset, "malformed")


# --- Shape --------------------------------------------------------------------


def test_token_with_two_or_four_segments_is_refused(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings), keyset.current)
    header, payload, signature = token.split(".")
    for forged in (
        f"{header}.{payload}",
        f"{header}.{payload}.{signature}.{signature}",
        f"{token}.",
        f".{token}",
        f"{header}..{payload}.{signature}",
        f"{payload}",
        f"{token}..{token}",
    ):
        refused(forged, settings, keyset, "malformed")


@pytest.mark.parametrize(
    "token",
    ["", "..", ".", "Bearer", None, 0, b"a.b.c", ["a", "b", "c"], {"token": "x"}],
)
def test_empty_or_non_string_token_is_refused(
    hs256: tuple[config.Settings, KeySet], token: object
) -> None:
    settings, keyset = hs256
    refused(token, settings, keyset, "malformed")


def test_json_serialization_is_refused(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    header, payload, signature = tokens.encode(
        claims_for(settings), keyset.current
    ).split(".")
    general = {
        "payload": payload,
        "signatures": [{"protected": header, "signature": signature}],
    }
    flattened = {"payload": payload, "protected": header, "signature": signature}
    for serialised in (general, flattened):
        refused(json.dumps(serialised), settings, keyset, "malformed")
        refused(serialised, settings, keyset, "malformed")


def test_bytes_of_a_valid_token_are_refused(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    token = tokens.encode(claims_for(settings), keyset.current)
    refused(token.encode("ascii"), settings, keyset, "malformed")


def _token_of_length(
    settings: config.Settings, key: Key, lengths: range
) -> tuple[str, dict[str, t.Any]]:
    for size in range(5000, 7000):
        claims = claims_for(settings, pad="x" * size)
        token = tokens.encode(claims, key)
        if len(token) in lengths:
            return token, claims
    raise AssertionError("no token of the wanted length")


def test_token_longer_than_the_maximum_is_refused(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    limit = tokens.MAX_TOKEN_LENGTH
    token, claims = _token_of_length(
        settings, keyset.current, range(limit - 2, limit + 1)
    )
    assert tokens.decode(token, settings, keyset, now=NOW) == claims
    token, _ = _token_of_length(settings, keyset.current, range(limit + 1, limit + 3))
    refused(token, settings, keyset, "too long")
    refused("A" * 100_000, settings, keyset, "too long")


# --- Order of checks ----------------------------------------------------------


def test_signature_is_checked_before_any_claim(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    """An attacker learns nothing about claim checks without a valid signature."""
    settings, keyset = hs256
    other = keys.hmac_key("HS256", "x" * 64, source="JWT_AUTH_SECRET_KEY")
    forged = dataclasses.replace(other, kid=keyset.current.kid)
    token = tokens.encode(claims_for(settings, exp=0, iss="evil"), forged)
    refused(token, settings, keyset, "signature is invalid")


def test_expiry_is_reported_before_other_claim_problems(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    claims = claims_for(settings, exp=NOW - 1, iss="evil", sub=5)
    refused(tokens.encode(claims, keyset.current), settings, keyset, "expired")


def test_error_descriptions_do_not_echo_token_content(
    hs256: tuple[config.Settings, KeySet],
) -> None:
    settings, keyset = hs256
    marker = "<script>alert(1)</script>"
    token = tokens.encode(claims_for(settings, iss=marker, uid=marker), keyset.current)
    error = refused(token, settings, keyset, "another issuer")
    assert marker not in str(error)


# --- Wycheproof ---------------------------------------------------------------

#: The vectors, copied unchanged from Project Wycheproof (see the README there).
WYCHEPROOF = Path(__file__).parent / "vectors" / "wycheproof"

#: Vectors that contradict themselves: byte-identical to tcId 357 (``valid``) but
#: labelled ``invalid``; the padding they are named after was lost upstream. Padding
#: is refused, see test_padded_segment_is_refused.
WYCHEPROOF_DEFECTIVE = {
    367: "vector identical to tcId 357 (valid) but labelled invalid: padding lost",
    370: "vector identical to tcId 357 (valid) but labelled invalid: padding lost",
}

#: ``valid`` vectors we refuse on purpose, with the reason and the description given.
WYCHEPROOF_DEVIATIONS: dict[int, tuple[str, str]] = {
    **{
        tc: (
            "high-S ECDSA signature: of the two valid signatures (r, s) and"
            " (r, n - s) the issuing application makes and accepts the low-S one"
            " only, so each token has one spelling; verify-only resource servers"
            " accept both",
            "canonical form",
        )
        for tc in (18, 347, 351)
    },
    **{
        tc: (
            "empty payload: an access token's payload is a JSON object, so an empty"
            " payload segment is refused as malformed (RFC 7515 allows it)",
            "malformed",
        )
        for tc in (259, 264, 268, 272, 320, 325)
    },
    **{
        tc: (
            "token alg PS384 differs from the key's alg PS256: the algorithm comes"
            " from configuration, never from the token (RFC 8725 §3.1)",
            "unexpected algorithm",
        )
        for tc in (346, 350)
    },
    **{
        tc: (
            "'?' is not base64url (RFC 7515 §2); Wycheproof accepts it because the"
            " MAC matches after a lenient decoding",
            "malformed",
        )
        for tc in (372, 373)
    },
}

#: RFC 7520 §3.2 names the P-521 key's algorithm "ES521"; the JWS alg is ES512.
_ALG_ALIASES = {"ES521": "ES512"}


def _wycheproof_cases() -> list[t.Any]:
    path = WYCHEPROOF / "json_web_signature_test.json"
    data = json.loads(path.read_text())
    cases = []
    for group in data["testGroups"]:
        jwk = group.get("public") or group["private"]
        alg = _ALG_ALIASES.get(jwk.get("alg"), jwk.get("alg"))
        for case in group["tests"]:
            tc = case["tcId"]
            name = f"tc{tc}-{group['comment']}-{case['comment']}-{case['result']}"
            marks: list[t.Any] = []
            if "JsonSerialization" in case["flags"] or not isinstance(case["jws"], str):
                marks.append(
                    pytest.mark.skip(
                        reason="JSON serialization: only the compact one is supported"
                        " (see test_json_serialization_is_refused)"
                    )
                )
            elif alg not in keys.ALGORITHMS:
                marks.append(
                    pytest.mark.skip(
                        reason=f"key without a signing alg (use/key_ops "
                        f"{jwk.get('use') or jwk.get('key_ops')}): the JWKS reader"
                        " refuses it (test_resource_server.py::"
                        "test_wycheproof_key_sets)"
                    )
                )
            elif tc in WYCHEPROOF_DEFECTIVE:
                marks.append(pytest.mark.skip(reason=WYCHEPROOF_DEFECTIVE[tc]))
            elif tc in WYCHEPROOF_DEVIATIONS:
                name += "-deviation"
            cases.append(pytest.param(jwk, alg, case, tc, id=name, marks=marks))
    return cases


@pytest.mark.parametrize(("jwk", "algorithm", "case", "tc"), _wycheproof_cases())
def test_wycheproof_jws_signature(
    jwk: dict[str, t.Any], algorithm: str, case: dict[str, t.Any], tc: int
) -> None:
    public = {name: value for name, value in jwk.items() if name != "alg"}
    verifying_key = jwt.PyJWK(public, algorithm=algorithm).key
    key = Key(
        kid=jwk.get("kid", "wycheproof"),
        algorithm=algorithm,
        signing_key=None,
        verifying_key=verifying_key,
    )
    keyset = KeySet(current=key)
    if tc in WYCHEPROOF_DEVIATIONS:
        _, description = WYCHEPROOF_DEVIATIONS[tc]
        assert case["result"] == "valid"
        with pytest.raises(TokenError, match=description):
            tokens.verify_signature(case["jws"], keyset, algorithm)
        if description == "canonical form":
            tokens.verify_signature(case["jws"], keyset, algorithm, canonical=False)
    elif case["result"] == "valid":
        header, payload = tokens.verify_signature(case["jws"], keyset, algorithm)
        assert header["alg"] == algorithm
        assert b64(payload) == case["jws"].split(".")[1]
    else:
        with pytest.raises(TokenError):
            tokens.verify_signature(case["jws"], keyset, algorithm)


def test_wycheproof_deviations_are_still_valid_vectors() -> None:
    """The deviations list stays in step with the vector file."""
    path = WYCHEPROOF / "json_web_signature_test.json"
    data = json.loads(path.read_text())
    results = {c["tcId"]: c["result"] for g in data["testGroups"] for c in g["tests"]}
    assert all(results[tc] == "valid" for tc in WYCHEPROOF_DEVIATIONS)
    assert all(results[tc] == "invalid" for tc in WYCHEPROOF_DEFECTIVE)
