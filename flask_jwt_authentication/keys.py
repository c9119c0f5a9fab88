"""Signing keys: loading and checking them once, their ``kid``, and their JWKS.

Keys are parsed once, when the application starts, into the key objects PyJWT's
algorithms sign and verify with, so no request re-parses PEM text. Nothing here
imports Flask.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
import json
import os
import typing as t

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import ed448
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import Algorithm
from jwt.algorithms import get_default_algorithms

from .errors import ConfigurationError

#: The algorithms the extension signs and verifies with, and the kind of key each
#: needs: for HMAC the minimum secret length in bytes (RFC 7518 §3.2: at least the
#: hash output), for EC the curve (RFC 7518 §3.4).
ALGORITHMS: t.Mapping[str, tuple[str, t.Any]] = {
    "HS256": ("oct", 32),
    "HS384": ("oct", 48),
    "HS512": ("oct", 64),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", ec.SECP256R1),
    "ES384": ("EC", ec.SECP384R1),
    "ES512": ("EC", ec.SECP521R1),
    "EdDSA": ("OKP", None),
}

#: The smallest RSA modulus accepted (RFC 7518 §3.3, NIST SP 800-131A).
MIN_RSA_BITS = 2048
#: The longest ``kid`` looked up; a longer one is refused before any lookup.
MAX_KID_LENGTH = 128

_PYJWT_ALGORITHMS = get_default_algorithms()


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: t.Mapping[str, t.Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url-encoded.

    Only the required members of the key type take part, in lexicographic order,
    with no whitespace (RFC 7638 §3.2).

    :param jwk: a JWK of ``kty`` ``RSA``, ``EC``, ``OKP`` or ``oct``.
    :raises ValueError: the key type is not one of those.
    """
    required = {
        "RSA": ("e", "kty", "n"),
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
        "oct": ("k", "kty"),
    }.get(jwk.get("kty", ""))
    if required is None:
        raise ValueError(f"unsupported key type {jwk.get('kty')!r}")
    members = {name: jwk[name] for name in required}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclasses.dataclass(frozen=True)
class Key:
    """One key, ready for signing and verifying.

    :param kid: the key id written into the token header.
    :param algorithm: the JWS ``alg`` this key is used with.
    :param signing_key: the HMAC secret or the private key object (``None`` for a
        verify-only key).
    :param verifying_key: the HMAC secret or the public key object.
    :param public_jwk: the public JWK, ``None`` for HMAC secrets.
    """

    kid: str
    algorithm: str
    signing_key: t.Any
    verifying_key: t.Any
    public_jwk: dict[str, t.Any] | None = None

    @property
    def jws_algorithm(self) -> Algorithm:
        """PyJWT's implementation of :attr:`algorithm`."""
        return _PYJWT_ALGORITHMS[self.algorithm]

    def __repr__(self) -> str:
        # Never show key material, even in a traceback.
        return f"<Key kid={self.kid!r} algorithm={self.algorithm!r}>"


@dataclasses.dataclass(frozen=True)
class KeySet:
    """The keys of one application: the one that signs, and every key that verifies.

    :param current: the key new tokens are signed with.
    :param retiring: keys that no longer sign but still verify tokens they signed.
    :param next: keys about to sign: published and verifying already, so a worker
        that has not yet seen a rotation accepts the tokens of one that has.
    """

    current: Key
    retiring: tuple[Key, ...] = ()
    next: tuple[Key, ...] = ()
    by_kid: t.Mapping[str, Key] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.by_kid:
            keys = {k.kid: k for k in (*self.next, *self.retiring, self.current)}
            object.__setattr__(self, "by_kid", keys)

    def candidates(self, kid: object) -> tuple[Key, ...]:
        """The keys a token with header ``kid`` may be verified with.

        A token without ``kid`` is tried against the current and retiring keys only;
        an unknown, non-string or oversized ``kid`` gets none.
        """
        if kid is None:
            return (self.current, *self.retiring)
        if not isinstance(kid, str) or len(kid) > MAX_KID_LENGTH:
            return ()
        key = self.by_kid.get(kid)
        return (key,) if key is not None else ()

    def jwks(self) -> dict[str, list[dict[str, t.Any]]]:
        """The public keys as a JWK Set (RFC 7517 §5); empty for HMAC secrets."""
        return {
            "keys": [
                dict(k.public_jwk)
                for k in (self.current, *self.next, *self.retiring)
                if k.public_jwk is not None
            ]
        }


def _read_key_value(name: str, value: str | bytes) -> bytes:
    """PEM text as given, or the contents of the file ``value`` names."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if data.lstrip().startswith(b"-----BEGIN"):
        return data
    looks_like_path = len(data) < 4096 and b"\n" not in data and b"\0" not in data
    if looks_like_path:
        path = os.fsdecode(data.strip())
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            # The value may be a mangled key rather than a path: repeat it only
            # when it cannot be one.
            hint = _key_value_hint(data)
            shown = (
                f"cannot read {path!r}"
                if not hint and len(path) <= 255
                else "the value is not shown, it may be a key"
            )
            raise ConfigurationError(
                f"{name} is neither PEM text nor the path of a readable file"
                f" ({shown}: {e.strerror}).{hint}"
            ) from None
    raise ConfigurationError(
        f"{name} is neither PEM text nor the path of a PEM file (the value is not"
        f" shown).{_key_value_hint(data)}"
    )


def _key_value_hint(data: bytes) -> str:
    """What a misformatted key value most likely is, without any of its text."""
    if b"-----BEGIN" in data:
        if b"\\n" in data:
            return (
                " It holds PEM text with literal \\n sequences: give it real line"
                " breaks (or the path of the PEM file)."
            )
        return (
            " It holds PEM text that does not start the value (quotes or other"
            " characters before -----BEGIN?): give the PEM text alone."
        )
    stripped = data.strip()
    if len(stripped) > 40 and all(
        c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-"
        for c in stripped
    ):
        return (
            " It looks like base64 without the PEM armour: give the whole PEM text,"
            " -----BEGIN and -----END lines included."
        )
    return ""


def _public_der(key: t.Any) -> bytes:
    return t.cast(
        bytes,
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


#: The primes of the ROCA fingerprint (CVE-2017-15361; Nemec et al., CCS 2017): the
#: moduli of RSA keys made by the flawed Infineon library are powers of 65537
#: modulo each of them. A random modulus passes with a probability near 2**-28.
_ROCA_PRIMES: tuple[int, ...] = (
    *(3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71),
    *(73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151),
    *(157, 163, 167),
)


@functools.cache
def _roca_residues() -> tuple[tuple[int, frozenset[int]], ...]:
    """For each ROCA prime, the powers of 65537 modulo it."""
    residues = []
    for prime in _ROCA_PRIMES:
        powers, power = set(), 1
        while power not in powers:
            powers.add(power)
            power = power * 65537 % prime
        residues.append((prime, frozenset(powers)))
    return tuple(residues)


def has_roca_fingerprint(modulus: int) -> bool:
    """Whether an RSA modulus has the fingerprint of the ROCA flaw: its key was
    made by a library whose primes can be recovered from the public key."""
    return all(modulus % prime in powers for prime, powers in _roca_residues())


def _check_key_type(name: str, algorithm: str, key: t.Any) -> None:
    """The one check of every key, configured, stored or fetched: its type and
    curve fit ``algorithm``, RSA keys have at least :data:`MIN_RSA_BITS` bits and
    no ROCA fingerprint.

    :raises ConfigurationError: naming ``name`` and what is wrong.
    """
    family, detail = ALGORITHMS[algorithm]
    public = key.public_key() if hasattr(key, "public_key") else key
    if family == "RSA":
        if not isinstance(public, rsa.RSAPublicKey):
            raise ConfigurationError(f"{name} must be an RSA key for {algorithm}.")
        if public.key_size < MIN_RSA_BITS:
            raise ConfigurationError(
                f"{name} is a {public.key_size}-bit RSA key; {algorithm} needs at least"
                f" {MIN_RSA_BITS} bits. Generate a new key."
            )
        if has_roca_fingerprint(public.public_numbers().n):
            raise ConfigurationError(
                f"{name} has the ROCA weakness (CVE-2017-15361): its private key can"
                " be computed from the public one. Generate a new key."
            )
    elif family == "EC":
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
            public.curve, detail
        ):
            raise ConfigurationError(
                f"{name} must be an EC key on curve {detail.name} for {algorithm}."
            )
    elif not isinstance(public, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        raise ConfigurationError(f"{name} must be an Ed25519 or Ed448 key for EdDSA.")


def asymmetric_key(
    algorithm: str,
    private_pem: str | bytes | None,
    public_pem: str | bytes | None = None,
    *,
    source: str = "JWT_AUTH_PRIVATE_KEY",
    public_source: str = "JWT_AUTH_PUBLIC_KEY",
) -> Key:
    """Load an RSA, EC or EdDSA key pair from PEM text or file paths.

    :param algorithm: the JWS algorithm the key will be used with.
    :param private_pem: the private key (PEM text or a path).
    :param public_pem: optionally the public key; it must match the private key.
    :param source: the setting the private key came from, for error messages.
    :param public_source: the setting the public key came from.
    :raises ConfigurationError: the key is missing, does not parse, is of the wrong
        type or size, or the public key does not match.
    """
    if private_pem is None or private_pem == "":
        raise ConfigurationError(
            f"{source} is required for {algorithm}: set it to a PEM private key or the"
            " path of one."
        )
    data = _read_key_value(source, private_pem)
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        hint = _key_value_hint(data) if b"\\n" in data else ""
        raise ConfigurationError(
            f"{source} is not an unencrypted PEM private key"
            f" ({type(e).__name__}).{hint}"
        ) from None
    _check_key_type(source, algorithm, private)
    public = private.public_key()
    if public_pem is not None and public_pem != "":
        try:
            given = serialization.load_pem_public_key(
                _read_key_value(public_source, public_pem)
            )
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise ConfigurationError(
                f"{public_source} is not a PEM public key ({type(e).__name__})."
            ) from None
        if _public_der(given) != _public_der(public):
            raise ConfigurationError(
                f"{public_source} does not match {source}: they are not one key pair."
            )
    jws_algorithm = _PYJWT_ALGORITHMS[algorithm]
    jwk: dict[str, t.Any] = jws_algorithm.to_jwk(public, as_dict=True)
    kid = jwk_thumbprint(jwk)
    jwk.update(kid=kid, alg=algorithm, use="sig")
    return Key(
        kid=kid,
        algorithm=algorithm,
        signing_key=private,
        verifying_key=public,
        public_jwk=jwk,
    )


def hmac_key(algorithm: str, secret: str | bytes | None, *, source: str) -> Key:
    """An HMAC key from a secret.

    The ``kid`` is derived from the secret with HMAC, so it reveals nothing of it.

    :raises ConfigurationError: the secret is missing or shorter than the hash
        output (RFC 7518 §3.2).
    """
    minimum = t.cast(int, ALGORITHMS[algorithm][1])
    if secret is None or secret == "":
        raise ConfigurationError(
            f"{source} is required for {algorithm}: set JWT_AUTH_SECRET_KEY (or"
            f" SECRET_KEY) to at least {minimum} random bytes, for example"
            " secrets.token_urlsafe(64)."
        )
    if not isinstance(secret, (str, bytes)):
        raise ConfigurationError(f"{source} must be a string or bytes.")
    data = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(data) < minimum:
        raise ConfigurationError(
            f"{source} is {len(data)} bytes long; {algorithm} needs at least {minimum}"
            " (RFC 7518 §3.2). Use secrets.token_urlsafe(64)."
        )
    key = _PYJWT_ALGORITHMS[algorithm].prepare_key(data)
    kid = b64url(
        hmac.new(data, b"flask-jwt-authentication kid", "sha256").digest()[:12]
    )
    return Key(kid=kid, algorithm=algorithm, signing_key=key, verifying_key=key)


def load_keyset(config: t.Mapping[str, t.Any], algorithm: str) -> KeySet:
    """Load the signing key the configuration describes.

    HMAC algorithms read ``JWT_AUTH_SECRET_KEY`` (falling back to ``SECRET_KEY``);
    the others read ``JWT_AUTH_PRIVATE_KEY`` and, optionally, ``JWT_AUTH_PUBLIC_KEY``.

    :raises ConfigurationError: as :func:`asymmetric_key` and :func:`hmac_key`.
    """
    if ALGORITHMS[algorithm][0] == "oct":
        if config.get("JWT_AUTH_SECRET_KEY"):
            secret, source = config["JWT_AUTH_SECRET_KEY"], "JWT_AUTH_SECRET_KEY"
        else:
            secret, source = config.get("SECRET_KEY"), "SECRET_KEY"
        return KeySet(current=hmac_key(algorithm, secret, source=source))
    return KeySet(
        current=asymmetric_key(
            algorithm,
            config.get("JWT_AUTH_PRIVATE_KEY"),
            config.get("JWT_AUTH_PUBLIC_KEY"),
        )
    )


def configured_keys(
    app_config: t.Mapping[str, t.Any], algorithm: str, encryption: t.Any
) -> KeySet | None:
    """The key from configuration; optional when keys can be stored instead."""
    try:
        return load_keyset(app_config, algorithm)
    except ConfigurationError:
        if encryption is None or _has_key_setting(app_config):
            raise
        return None


def keys_for(
    app_config: t.Mapping[str, t.Any], encryption: t.Any, algorithm: str
) -> KeySet | None:
    """The configured key for ``algorithm``, or ``None`` if it has none (the
    run-time algorithm switch asks)."""
    try:
        return load_keyset(app_config, algorithm)
    except ConfigurationError:
        return None


def _has_key_setting(app_config: t.Mapping[str, t.Any]) -> bool:
    return any(
        app_config.get(name)
        for name in (
            "JWT_AUTH_SECRET_KEY",
            "JWT_AUTH_PRIVATE_KEY",
            "JWT_AUTH_PUBLIC_KEY",
        )
    )
