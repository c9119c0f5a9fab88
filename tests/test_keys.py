"""Signing keys: loading and checking them at start-up, their ``kid`` and the JWKS.

Pure unit tests of :mod:`flask_jwt_authentication.keys` (docs/tokens.rst and
docs/keys.rst).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import random
import typing as t
from pathlib import Path

import jwt
import pytest
from conftest import ALGORITHMS
from conftest import EXTRA_ALGORITHMS
from conftest import key_config
from conftest import key_path
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import keys
from flask_jwt_authentication import tokens
from flask_jwt_authentication.errors import ConfigurationError
from flask_jwt_authentication.keys import KeySet
from flask_jwt_authentication.remote import parse_jwks
from flask_jwt_authentication.tokens import TokenError

ALL_ALGORITHMS = ALGORITHMS + EXTRA_ALGORITHMS
ASYMMETRIC = [a for a in ALL_ALGORITHMS if not a.startswith("HS")]
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
SECRET = "k" * 64


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def public_path(name: str) -> Path:
    return key_path(name).with_name(f"{name}.pub.pem")


def rsa_key(algorithm: str = "RS256", **config: t.Any) -> KeySet:
    return keys.load_keyset(key_config(algorithm) | config, algorithm)


def _int_bytes(value: int, size: int | None = None) -> bytes:
    size = size or max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(size, "big")


def independent_thumbprint(public: t.Any) -> str:
    """RFC 7638 §3, written out from the key's numbers, not from the package."""
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        members = {
            "e": b64(_int_bytes(numbers.e)),
            "kty": "RSA",
            "n": b64(_int_bytes(numbers.n)),
        }
        text = '{{"e":"{e}","kty":"{kty}","n":"{n}"}}'.format(**members)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        size = (public.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[
            public.curve.name
        ]
        numbers = public.public_numbers()
        x, y = b64(_int_bytes(numbers.x, size)), b64(_int_bytes(numbers.y, size))
        text = f'{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}'
    else:
        assert isinstance(public, ed25519.Ed25519PublicKey)
        raw = public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        text = f'{{"crv":"Ed25519","kty":"OKP","x":"{b64(raw)}"}}'
    return b64(hashlib.sha256(text.encode("ascii")).digest())


# --- Thumbprints and kid ------------------------------------------------------

#: RFC 7638 §3.1.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFx"
    "uhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6"
    "Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n"
    "91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF4"
    "4-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_rfc7638_thumbprint_example() -> None:
    assert keys.jwk_thumbprint(RFC7638_JWK) == (
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    )


def test_thumbprint_ignores_member_order_and_optional_members() -> None:
    shuffled = dict(reversed(list(RFC7638_JWK.items())))
    bare = {name: RFC7638_JWK[name] for name in ("e", "kty", "n")}
    extra = RFC7638_JWK | {"use": "sig", "x5t": "ignored", "kid": "other"}
    thumbprints = {keys.jwk_thumbprint(jwk) for jwk in (shuffled, bare, extra)}
    assert thumbprints == {"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}


def test_thumbprint_of_an_unknown_key_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported key type"):
        keys.jwk_thumbprint({"kty": "XYZ", "k": "AAAA"})


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_asymmetric_kid_is_the_rfc7638_thumbprint_of_the_public_key(
    algorithm: str,
) -> None:
    key = rsa_key(algorithm).current
    assert key.kid == independent_thumbprint(key.verifying_key)
    assert key.kid == keys.jwk_thumbprint(key.public_jwk or {})


def test_kid_depends_only_on_the_public_key() -> None:
    """One RSA key pair has one kid whatever the algorithm; another pair another."""
    kids = {rsa_key(alg).current.kid for alg in ("RS256", "RS512", "PS384")}
    assert len(kids) == 1
    other = keys.asymmetric_key("RS256", str(key_path("rsa2048-other")))
    assert other.kid not in kids


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_kid_reveals_nothing_of_the_secret_and_is_stable(algorithm: str) -> None:
    secret = "s3cr3t-" + "x" * 57
    first = keys.hmac_key(algorithm, secret, source="JWT_AUTH_SECRET_KEY")
    again = keys.hmac_key(algorithm, secret.encode(), source="JWT_AUTH_SECRET_KEY")
    other = keys.hmac_key(algorithm, secret + "y", source="JWT_AUTH_SECRET_KEY")
    assert first.kid == again.kid
    assert first.kid != other.kid
    assert "s3cr3t" not in first.kid
    assert b64(secret.encode())[:8] not in first.kid
    assert "s3cr3t" not in unb64(first.kid).decode("latin-1")
    # Not a plain hash of the secret either: that would let anyone test guesses.
    for digest in (hashlib.sha256, hashlib.sha1, hashlib.md5):
        assert b64(digest(secret.encode()).digest())[: len(first.kid)] != first.kid


@pytest.mark.parametrize(
    ("algorithm", "name"),
    [
        ("RS256", "rsa2048"),
        ("ES384", "ec384"),
        ("ES512", "ec521"),
        ("EdDSA", "ed25519"),
    ],
)
def test_pem_text_bytes_and_file_path_give_the_same_key(
    algorithm: str, name: str
) -> None:
    path = key_path(name)
    text = path.read_text()
    loaded = [
        keys.asymmetric_key(algorithm, str(path)),
        keys.asymmetric_key(algorithm, text),
        keys.asymmetric_key(algorithm, text.encode()),
        keys.asymmetric_key(algorithm, "\n" + text + "\n\n"),
        keys.asymmetric_key(algorithm, f"  {path}  "),
        keys.asymmetric_key(algorithm, str(path), public_path(name).read_text()),
        keys.asymmetric_key(algorithm, text, str(public_path(name))),
    ]
    assert len({key.kid for key in loaded}) == 1
    assert len({json.dumps(key.public_jwk, sort_keys=True) for key in loaded}) == 1


# --- JWKS ---------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_jwks_holds_only_the_public_key(algorithm: str) -> None:
    keyset = rsa_key(algorithm)
    jwks = keyset.jwks()
    assert list(jwks) == ["keys"]
    [jwk] = jwks["keys"]
    assert not PRIVATE_MEMBERS & set(jwk)
    assert jwk["kid"] == keyset.current.kid
    assert jwk["alg"] == algorithm
    assert jwk["use"] == "sig"
    assert jwk["kty"] in {"RSA", "EC", "OKP"}
    # It is JSON and it is the key that verifies our tokens.
    published = jwt.PyJWK(json.loads(json.dumps(jwk)))
    assert published.key_id == keyset.current.kid
    signed = keyset.current.jws_algorithm.sign(b"message", keyset.current.signing_key)
    assert published.Algorithm.verify(b"message", published.key, signed)


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_jwks_is_empty_for_hmac(algorithm: str) -> None:
    keyset = rsa_key(algorithm)
    assert keyset.jwks() == {"keys": []}
    assert keyset.current.public_jwk is None


def test_jwks_lists_the_current_then_the_retiring_keys() -> None:
    current = rsa_key("RS256").current
    retiring = keys.asymmetric_key("RS256", str(key_path("rsa2048-other")))
    jwks = KeySet(current=current, retiring=(retiring,)).jwks()
    assert [jwk["kid"] for jwk in jwks["keys"]] == [current.kid, retiring.kid]
    assert all(not PRIVATE_MEMBERS & set(jwk) for jwk in jwks["keys"])


def test_jwks_is_a_copy() -> None:
    keyset = rsa_key("ES256")
    keyset.jwks()["keys"][0]["kid"] = "changed"
    assert keyset.jwks()["keys"][0]["kid"] == keyset.current.kid


# --- repr ---------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_repr_shows_no_key_material(algorithm: str) -> None:
    keyset = rsa_key(algorithm)
    key = keyset.current
    for text in (repr(key), str(key), repr(keyset), f"{key!r}"):
        assert key.kid in text
        assert "kkkkkkkk" not in text
        assert "BEGIN" not in text
        assert "PrivateKey" not in text
        assert "object at 0x" not in text
        if key.public_jwk:
            for member in ("n", "x", "y"):
                if member in key.public_jwk:
                    assert key.public_jwk[member][:16] not in text


# --- KeySet.candidates --------------------------------------------------------


@pytest.fixture
def rotated() -> KeySet:
    current = keys.hmac_key("HS256", "c" * 64, source="JWT_AUTH_SECRET_KEY")
    old = keys.hmac_key("HS256", "o" * 64, source="JWT_AUTH_SECRET_KEY")
    older = keys.hmac_key("HS256", "p" * 64, source="JWT_AUTH_SECRET_KEY")
    return KeySet(current=current, retiring=(old, older))


def test_no_kid_means_current_then_retiring_keys(rotated: KeySet) -> None:
    assert rotated.candidates(None) == (rotated.current, *rotated.retiring)


def test_kid_selects_exactly_that_key(rotated: KeySet) -> None:
    for key in (rotated.current, *rotated.retiring):
        assert rotated.candidates(key.kid) == (key,)


@pytest.mark.parametrize(
    "kid", ["", "unknown", 0, 1.0, True, ["x"], {"kid": "x"}, b"kid", "k" * 10_000]
)
def test_unknown_non_string_or_oversized_kid_has_no_candidates(
    rotated: KeySet, kid: object
) -> None:
    assert rotated.candidates(kid) == ()


def test_kid_length_limit_applies_to_known_keys_too() -> None:
    base = keys.hmac_key("HS256", SECRET, source="JWT_AUTH_SECRET_KEY")
    at_limit = dataclasses.replace(base, kid="a" * keys.MAX_KID_LENGTH)
    over = dataclasses.replace(base, kid="b" * (keys.MAX_KID_LENGTH + 1))
    assert KeySet(current=at_limit).candidates(at_limit.kid) == (at_limit,)
    assert KeySet(current=over).candidates(over.kid) == ()


def test_kid_lookup_is_exact(rotated: KeySet) -> None:
    kid = rotated.current.kid
    for near in (kid.upper(), kid.lower(), kid + " ", " " + kid, kid[:-1]):
        if near != kid:
            assert rotated.candidates(near) == ()


# --- Refused keys -------------------------------------------------------------


def test_missing_private_key_is_refused() -> None:
    for value in (None, ""):
        config = {"JWT_AUTH_PRIVATE_KEY": value} if value is not None else {}
        with pytest.raises(
            ConfigurationError, match="JWT_AUTH_PRIVATE_KEY is required"
        ):
            keys.load_keyset(config, "RS256")


@pytest.mark.parametrize(
    "garbage",
    [
        "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n",
        "-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN",
    ],
)
def test_garbage_pem_is_refused(garbage: str) -> None:
    with pytest.raises(
        ConfigurationError, match="JWT_AUTH_PRIVATE_KEY is not an unencrypted PEM"
    ):
        keys.load_keyset({"JWT_AUTH_PRIVATE_KEY": garbage}, "RS256")


def test_text_that_is_neither_pem_nor_a_path_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="JWT_AUTH_PRIVATE_KEY is neither"):
        keys.load_keyset({"JWT_AUTH_PRIVATE_KEY": "not\na key"}, "RS256")


def test_unreadable_key_path_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigurationError, match=r"JWT_AUTH_PRIVATE_KEY.*missing\.pem"):
        keys.load_keyset({"JWT_AUTH_PRIVATE_KEY": str(missing)}, "RS256")
    with pytest.raises(ConfigurationError, match="JWT_AUTH_PRIVATE_KEY"):
        keys.load_keyset({"JWT_AUTH_PRIVATE_KEY": str(tmp_path)}, "RS256")


def test_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(ConfigurationError, match="JWT_AUTH_PRIVATE_KEY is not"):
        keys.load_keyset({"JWT_AUTH_PRIVATE_KEY": str(path)}, "RS256")


def test_encrypted_private_key_is_refused() -> None:
    private = serialization.load_pem_private_key(
        key_path("rsa2048").read_bytes(), password=None
    )
    encrypted = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    with pytest.raises(ConfigurationError, match="not an unencrypted PEM private key"):
        keys.load_keyset({"JWT_AUTH_PRIVATE_KEY": encrypted}, "RS256")


def test_public_key_given_as_the_private_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="JWT_AUTH_PRIVATE_KEY is not"):
        keys.load_keyset({"JWT_AUTH_PRIVATE_KEY": str(public_path("rsa2048"))}, "RS256")


@pytest.mark.parametrize("algorithm", ["RS256", "RS512", "PS256"])
def test_rsa_1024_key_is_refused(algorithm: str) -> None:
    with pytest.raises(
        ConfigurationError, match=r"JWT_AUTH_PRIVATE_KEY.*1024-bit.*2048"
    ):
        keys.load_keyset({"JWT_AUTH_PRIVATE_KEY": str(key_path("rsa1024"))}, algorithm)


def _probable_prime(n: int, rng: random.Random, rounds: int = 25) -> bool:
    """Miller-Rabin."""
    if n % 2 == 0:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def roca_private_key(bits: int = 2048, seed: int = 2017) -> rsa.RSAPrivateKey:
    """An RSA key made the way the flawed Infineon library made them (Nemec et
    al., "The Return of Coppersmith's Attack", CCS 2017, §2.3): each prime is
    ``k * M + (65537**a mod M)``, ``M`` the product of the first 71 primes (the
    library's choice for keys of 1025 to 2048 bits)."""
    rng = random.Random(seed)
    small = [n for n in range(2, 400) if all(n % d for d in range(2, n))][:71]
    m = math.prod(small)
    half = bits // 2

    def prime() -> int:
        while True:
            p = rng.randrange(2 ** (half - 1) // m, 2**half // m) * m + pow(
                65537, rng.randrange(1, m), m
            )
            if p.bit_length() == half and (p - 1) % 65537 and _probable_prime(p, rng):
                return p

    p, q = prime(), prime()
    d = pow(65537, -1, math.lcm(p - 1, q - 1))
    return rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(65537, p * q),
    ).private_key()


@pytest.mark.parametrize("algorithm", ["RS256", "PS256"])
def test_a_configured_rsa_key_with_the_roca_fingerprint_is_refused(
    algorithm: str,
) -> None:
    """The check a fetched JWK Set's keys get holds for the configured key too,
    at start-up (CVE-2017-15361)."""
    weak = roca_private_key()
    assert weak.key_size == 2048
    pem = weak.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(ConfigurationError, match="JWT_AUTH_PRIVATE_KEY has the ROCA"):
        keys.load_keyset({"JWT_AUTH_PRIVATE_KEY": pem}, algorithm)
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite://",
        JWT_AUTH_ALGORITHM=algorithm,
        JWT_AUTH_PRIVATE_KEY=pem,
    )
    with pytest.raises(ConfigurationError, match="CVE-2017-15361"):
        JWTAuthentication(app, db=SQLAlchemy(app))
    # The same key as a JWK is refused by a resource server's JWK Set parser.
    numbers = weak.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "n": b64(numbers.n.to_bytes(256, "big")),
        "e": "AQAB",
        "kid": "weak",
    }
    assert parse_jwks({"keys": [jwk]}, algorithm) == ()


def test_public_key_of_another_pair_is_refused() -> None:
    config = key_config("RS256") | {
        "JWT_AUTH_PUBLIC_KEY": str(public_path("rsa2048-other"))
    }
    with pytest.raises(
        ConfigurationError, match="JWT_AUTH_PUBLIC_KEY does not match JWT_AUTH_PRIVATE"
    ):
        keys.load_keyset(config, "RS256")


def test_public_key_of_another_type_is_refused() -> None:
    config = key_config("RS256") | {"JWT_AUTH_PUBLIC_KEY": str(public_path("ec256"))}
    with pytest.raises(ConfigurationError, match="JWT_AUTH_PUBLIC_KEY does not match"):
        keys.load_keyset(config, "RS256")


def test_garbage_public_key_is_refused() -> None:
    config = key_config("RS256") | {"JWT_AUTH_PUBLIC_KEY": str(key_path("rsa2048"))}
    with pytest.raises(ConfigurationError, match="JWT_AUTH_PUBLIC_KEY is not a PEM"):
        keys.load_keyset(config, "RS256")


@pytest.mark.parametrize(
    ("algorithm", "name"), [("RS256", "rsa2048"), ("ES256", "ec256")]
)
def test_matching_public_key_is_accepted(algorithm: str, name: str) -> None:
    config = key_config(algorithm) | {"JWT_AUTH_PUBLIC_KEY": str(public_path(name))}
    assert (
        keys.load_keyset(config, algorithm).current.kid
        == rsa_key(algorithm).current.kid
    )


@pytest.mark.parametrize(
    ("algorithm", "name", "match"),
    [
        ("ES384", "ec256", "EC key on curve secp384r1 for ES384"),
        ("ES256", "ec384", "EC key on curve secp256r1 for ES256"),
        ("ES512", "ec384", "EC key on curve secp521r1 for ES512"),
        ("ES256", "rsa2048", "EC key on curve secp256r1 for ES256"),
        ("ES256", "ed25519", "EC key on curve secp256r1 for ES256"),
        ("RS256", "ec256", "RSA key for RS256"),
        ("PS256", "ed25519", "RSA key for PS256"),
        ("EdDSA", "rsa2048", "Ed25519 or Ed448 key for EdDSA"),
        ("EdDSA", "ec256", "Ed25519 or Ed448 key for EdDSA"),
    ],
)
def test_key_of_the_wrong_type_or_curve_is_refused(
    algorithm: str, name: str, match: str
) -> None:
    with pytest.raises(
        ConfigurationError, match=f"JWT_AUTH_PRIVATE_KEY must be an? {match}"
    ):
        keys.load_keyset({"JWT_AUTH_PRIVATE_KEY": str(key_path(name))}, algorithm)


@pytest.mark.parametrize(
    ("algorithm", "minimum"), [("HS256", 32), ("HS384", 48), ("HS512", 64)]
)
def test_hmac_secret_shorter_than_the_hash_is_refused(
    algorithm: str, minimum: int
) -> None:
    short = {"JWT_AUTH_SECRET_KEY": "k" * (minimum - 1)}
    with pytest.raises(
        ConfigurationError,
        match=f"JWT_AUTH_SECRET_KEY is {minimum - 1} bytes long; {algorithm} needs at"
        f" least {minimum}",
    ):
        keys.load_keyset(short, algorithm)
    enough = keys.load_keyset({"JWT_AUTH_SECRET_KEY": "k" * minimum}, algorithm)
    assert enough.current.algorithm == algorithm


def test_hmac_secret_length_counts_bytes_not_characters() -> None:
    # 16 two-byte characters are 32 bytes: enough for HS256, not for HS384.
    assert keys.load_keyset({"JWT_AUTH_SECRET_KEY": "é" * 16}, "HS256")
    with pytest.raises(ConfigurationError, match="32 bytes long"):
        keys.load_keyset({"JWT_AUTH_SECRET_KEY": "é" * 16}, "HS384")


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_missing_secret_is_refused(algorithm: str) -> None:
    for config in ({}, {"JWT_AUTH_SECRET_KEY": ""}, {"SECRET_KEY": None}):
        with pytest.raises(ConfigurationError, match="SECRET_KEY is required"):
            keys.load_keyset(config, algorithm)


def test_non_text_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="JWT_AUTH_SECRET_KEY must be"):
        keys.load_keyset({"JWT_AUTH_SECRET_KEY": 12345678901234567890}, "HS256")


def test_secret_falls_back_to_secret_key() -> None:
    fallback = keys.load_keyset({"SECRET_KEY": "f" * 64}, "HS256").current
    direct = keys.hmac_key("HS256", "f" * 64, source="SECRET_KEY")
    assert fallback.kid == direct.kid
    # The fallback really signs with SECRET_KEY.
    signature = fallback.jws_algorithm.sign(b"m", fallback.signing_key)
    assert direct.jws_algorithm.verify(b"m", direct.verifying_key, signature)


def test_jwt_auth_secret_key_wins_over_secret_key() -> None:
    both = {"JWT_AUTH_SECRET_KEY": "j" * 64, "SECRET_KEY": "f" * 64}
    kid = keys.load_keyset(both, "HS256").current.kid
    assert kid == keys.hmac_key("HS256", "j" * 64, source="x").kid
    assert kid != keys.hmac_key("HS256", "f" * 64, source="x").kid


def test_short_secret_key_fallback_is_refused_by_its_own_name() -> None:
    with pytest.raises(ConfigurationError, match=r"^SECRET_KEY is 10 bytes long"):
        keys.load_keyset({"SECRET_KEY": "s" * 10}, "HS256")


# --- Wycheproof JSON Web Key vectors that map onto key validation -------------

_JWK_VECTORS = (
    Path(__file__).parent / "vectors" / "wycheproof" / "json_web_key_test.json"
)

#: tcId -> how it maps: HMAC secrets (too short, empty, long enough), a 1024-bit RSA
#: key, an algorithm whose curve the key is not on. The others (mixed or duplicate-kid
#: JWK sets, ``use``/``key_ops``, ROCA, e=1, invalid points, AES keys) concern JWK
#: parsing, which only verify-only mode does: test_resource_server.py runs all 26.
_JWK_MAPPED = {
    10: "hmac",
    11: "hmac",
    12: "hmac",
    13: "hmac",
    14: "hmac",
    15: "hmac",
    16: "hmac",
    17: "hmac",
    18: "hmac",
    8: "pem:1024-bit RSA key",
    19: "pem:EC key on curve secp521r1",
}


def _jwk_cases() -> list[t.Any]:
    data = json.loads(_JWK_VECTORS.read_text())
    cases = []
    for group in data["testGroups"]:
        for case in group["tests"]:
            if case["tcId"] in _JWK_MAPPED:
                name = f"tc{case['tcId']}-{group['comment']}-{case['comment']}"
                cases.append(pytest.param(group, case, id=name))
    return cases


@pytest.mark.parametrize(("group", "case"), _jwk_cases())
def test_wycheproof_json_web_key(
    group: dict[str, t.Any], case: dict[str, t.Any]
) -> None:
    [jwk] = group["private"]["keys"]
    if _JWK_MAPPED[case["tcId"]] == "hmac":
        algorithm = jwk["alg"]
        secret = unb64(jwk["k"])
        if case["result"] == "invalid":
            with pytest.raises(ConfigurationError, match="JWT_AUTH_SECRET_KEY"):
                keys.hmac_key(algorithm, secret, source="JWT_AUTH_SECRET_KEY")
            return
        key = keys.hmac_key(algorithm, secret, source="JWT_AUTH_SECRET_KEY")
        # The vector's token names the key by the JWK's kid; ours is derived.
        keyset = KeySet(current=dataclasses.replace(key, kid=jwk["kid"]))
        tokens.verify_signature(case["jws"], keyset, algorithm)
        tampered = case["jws"][:-2] + ("AA" if case["jws"][-2:] != "AA" else "BA")
        with pytest.raises(TokenError):
            tokens.verify_signature(tampered, keyset, algorithm)
        return
    # A private JWK, as an operator would export it to PEM for JWT_AUTH_PRIVATE_KEY.
    algorithm = {"ES521": "ES512"}.get(jwk["alg"], jwk["alg"])
    material = {name: value for name, value in jwk.items() if name != "alg"}
    kind = "ES256" if jwk["kty"] == "EC" else "RS256"
    private = jwt.PyJWK(material, algorithm=kind)
    pem = private.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert case["result"] == "invalid"
    expected = _JWK_MAPPED[case["tcId"]].removeprefix("pem:")
    with pytest.raises(ConfigurationError, match=f"JWT_AUTH_PRIVATE_KEY .*{expected}"):
        keys.asymmetric_key(algorithm, pem)


@pytest.mark.parametrize(
    "name", ["JWT_AUTH_SECRET_KEY", "JWT_AUTH_PRIVATE_KEY", "JWT_AUTH_PUBLIC_KEY"]
)
def test_an_explicitly_empty_key_setting_is_refused(name: str) -> None:
    """Even where the key store could supply a key, an empty key setting is a
    mistake, not a request for the fallback."""
    app = Flask("empty")
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite://",
        SECRET_KEY="s" * 64,
        JWT_AUTH_KEY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        **{name: ""},
    )
    db = SQLAlchemy()
    db.init_app(app)
    with pytest.raises(ConfigurationError, match=f"{name} is set but empty"):
        JWTAuthentication(app, db=db)


def _pem_text(name: str) -> str:
    return key_path(name).read_text()


@pytest.mark.parametrize(
    ("mangle", "hint"),
    [
        # A PEM put into an environment file with its line breaks escaped.
        (lambda pem: '"' + pem.replace("\n", "\\n") + '"', "literal \\n"),
        (lambda pem: pem.replace("\n", "\\n"), "literal \\n"),
        # The base64 body alone, without the armour.
        (
            lambda pem: "".join(pem.strip().splitlines()[1:-1]),
            "base64 without the PEM armour",
        ),
        (lambda pem: "'" + pem + "'", "does not start the value"),
    ],
)
def test_a_misformatted_private_key_is_never_echoed(
    mangle: t.Callable[[str], str], hint: str
) -> None:
    """The error says what is wrong and where, never the value: no line of the
    key's base64 appears in it."""
    pem = _pem_text("rsa2048")
    value = mangle(pem)
    with pytest.raises(ConfigurationError) as caught:
        keys.load_keyset({"JWT_AUTH_PRIVATE_KEY": value}, "RS256")
    message = str(caught.value)
    assert "JWT_AUTH_PRIVATE_KEY" in message
    assert hint in message
    for line in pem.strip().splitlines()[1:-1]:
        assert line[:16] not in message
    assert value[:40] not in message
