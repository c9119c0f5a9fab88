"""DPoP (RFC 9449): the pure parts, without Flask or a database.

The key thumbprint that binds tokens to a client's key (RFC 7638, RFC 9449 §6),
the access-token hash a proof carries on resource requests (RFC 9449 §4.2), and
the checks of RFC 9449 §4.3 on a proof. What a proof's ``jti`` was seen before
is the caller's to say (a replay cache shared by every worker).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import typing as t
import urllib.parse

from . import tokens
from .keys import Key
from .keys import b64url
from .keys import jwk_thumbprint
from .remote import UnusableKey
from .remote import public_key_from_jwk
from .settings_registry import DPOP_ALGORITHMS

#: The header type of a proof (RFC 9449 §4.2).
PROOF_TYPE = "dpop+jwt"
#: Asymmetric algorithms a proof may use, in the order a challenge lists them
#: (``JWT_AUTH_DPOP_ALGORITHMS`` chooses among them).
ALGORITHMS = DPOP_ALGORITHMS
#: The longest proof read.
MAX_PROOF_LENGTH = 8192
#: Proof headers whose checks passed, with their key: at most this many...
MAX_CACHED_HEADERS = 4096
#: ...each at most this long (an RSA 4096 key's header is about 1,000).
MAX_CACHED_HEADER_LENGTH = 2048
_HEADERS: dict[str, tuple[str, str, Key]] = {}
#: Members only a private key has (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: The members of each key type that RFC 7638 §3.2 hashes.
_THUMBPRINT_MEMBERS: t.Mapping[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}


class InvalidProof(ValueError):
    """A DPoP proof fails a check of RFC 9449 §4.3; the message says which."""


def thumbprint(jwk: t.Mapping[str, t.Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url: the ``jkt``.

    :param jwk: a public JWK (``EC``, ``OKP`` or ``RSA``).
    :raises ValueError: the key type is not supported or a required member is
        missing or not a string.
    """
    members = _THUMBPRINT_MEMBERS.get(t.cast(str, jwk.get("kty")))
    if members is None:
        raise ValueError(f"Unsupported JWK key type {jwk.get('kty')!r}.")
    for name in members:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"The JWK lacks the member {name!r}.")
    return jwk_thumbprint(jwk)


def access_token_hash(token: str) -> str:
    """The ``ath`` claim of a proof: base64url(SHA-256(access token)), RFC 9449 §4.2."""
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


def uri_of(uri: str) -> str:
    """``uri`` normalised, or as given when it cannot be (for messages)."""
    try:
        return normalized_uri(uri)
    except ValueError:
        return uri


@functools.lru_cache(maxsize=1024)
def normalized_uri(uri: str) -> str:
    """``uri`` as proofs are compared (RFC 9449 §4.3 check 9, RFC 3986 §6):
    scheme and host in lower case, the default port dropped, no query or
    fragment, an empty path as ``/``."""
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urllib.parse.urlunsplit((scheme, host, parts.path or "/", "", ""))


@dataclasses.dataclass(frozen=True)
class Proof:
    """A proof that passed every check."""

    #: The thumbprint of the proof's key: what tokens are bound to.
    jkt: str
    jti: str
    iat: int
    #: The ``nonce`` claim (RFC 9449 §8), if any: the caller checks it.
    nonce: object = None


@dataclasses.dataclass(frozen=True)
class UnverifiedProof:
    """A proof whose header and claims passed their checks, its signature not
    yet verified: :meth:`verify` does that. Lets a caller start its replay
    check while the signature is verified."""

    proof: Proof
    _token: str
    _key: Key

    def verify(self) -> Proof:
        """Verify the signature.

        :raises InvalidProof: it does not verify.
        """
        # The header was checked (and its key built) by read_proof; clients
        # (WebCrypto, say) do not normalise ECDSA signatures, none is refused
        # for its form.
        signing_input, _, signature_segment = self._token.rpartition(".")
        key = self._key
        try:
            signature = tokens._b64decode(signature_segment)
            valid = key.jws_algorithm.verify(
                signing_input.encode("ascii"), key.verifying_key, signature
            )
        except (tokens.TokenError, ValueError):
            valid = False
        if not valid:
            raise InvalidProof("The DPoP proof's signature or key is invalid.")
        return self.proof


def verify_proof(
    proof: object,
    *,
    method: str,
    uri: str,
    now: float,
    window: int,
    algorithms: t.Collection[str] = ALGORITHMS,
    access_token: str | None = None,
) -> Proof:
    """Check a DPoP proof (RFC 9449 §4.3), all but its ``nonce`` and the
    uniqueness of its ``jti``, which the caller checks against what it handed
    out and what it has seen.

    :param proof: the ``DPoP`` header's value.
    :param method: the request's method (``htm``).
    :param uri: the request's URI (``htu``, compared normalised).
    :param now: the current time, seconds since the epoch.
    :param window: how far ``iat`` may be from ``now``, in seconds.
    :param algorithms: the accepted algorithms, asymmetric only.
    :param access_token: on a resource request, the access token the proof
        must be bound to (``ath``).
    :raises InvalidProof: a check fails.
    """
    return read_proof(
        proof,
        method=method,
        uri=uri,
        now=now,
        window=window,
        algorithms=algorithms,
        access_token=access_token,
    ).verify()


def read_proof(
    proof: object,
    *,
    method: str,
    uri: str,
    now: float,
    window: int,
    algorithms: t.Collection[str] = ALGORITHMS,
    access_token: str | None = None,
) -> UnverifiedProof:
    """Every check of :func:`verify_proof` but the signature's, which
    :meth:`UnverifiedProof.verify` does.

    :raises InvalidProof: a check fails.
    """
    if not isinstance(proof, str) or not proof or len(proof) > MAX_PROOF_LENGTH:
        raise InvalidProof("The DPoP proof is missing or too long.")
    # A client sends the same header with every proof: its checks and its key
    # are worked out once.
    segment = proof.partition(".")[0]
    checked = _HEADERS.get(segment)
    if checked is None:
        checked = _checked_header(proof)
        if len(segment) <= MAX_CACHED_HEADER_LENGTH:
            if len(_HEADERS) >= MAX_CACHED_HEADERS:
                _HEADERS.clear()
            _HEADERS[segment] = checked
    algorithm, jkt, key = checked
    if algorithm not in algorithms:
        raise InvalidProof("The DPoP proof's algorithm is not accepted.")
    claims = _unverified_claims(proof)
    if claims.get("htm") != method:
        raise InvalidProof("The DPoP proof is for another method.")
    htu = claims.get("htu")
    try:
        same = isinstance(htu, str) and normalized_uri(htu) == normalized_uri(uri)
    except ValueError:  # a port that is not a number, say
        same = False
    if not same:
        raise InvalidProof(
            f"The DPoP proof is for another URI (this request's is {uri_of(uri)}:"
            " behind a proxy, see ProxyFix)."
        )
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, (int, float)):
        # A NumericDate (RFC 7519 §2) may have a fraction.
        raise InvalidProof("The DPoP proof's iat is not a number.")
    if not math.isfinite(iat) or abs(now - iat) > window:
        raise InvalidProof("The DPoP proof is too old or from the future.")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise InvalidProof("The DPoP proof has no valid jti.")
    if access_token is not None and claims.get("ath") != access_token_hash(
        access_token
    ):
        raise InvalidProof("The DPoP proof is not bound to this access token.")
    checked_proof = Proof(
        jkt=jkt, jti=jti, iat=math.ceil(iat), nonce=claims.get("nonce")
    )
    return UnverifiedProof(checked_proof, proof, key)


def unverified_claim(proof: object, name: str) -> object:
    """The claim ``name`` of a proof, read without any check; ``None`` when
    the proof is not a readable JWT or lacks it."""
    if not isinstance(proof, str) or len(proof) > MAX_PROOF_LENGTH:
        return None
    try:
        return _unverified_claims(proof).get(name)
    except InvalidProof:
        return None


def _unverified_claims(proof: str) -> dict[str, t.Any]:
    try:
        payload = tokens._b64decode(tokens._segments(proof)[1])
    except tokens.TokenError:
        raise InvalidProof("The DPoP proof is not a JWT.") from None
    return _claims(payload)


def _checked_header(proof: str) -> tuple[str, str, Key]:
    """The algorithm, the key's thumbprint and the key of a proof's header,
    once it passes the checks that depend on the header alone."""
    try:
        header = tokens.unverified_header(proof)
    except tokens.TokenError:
        raise InvalidProof("The DPoP proof is not a JWT.") from None
    if header.get("typ") != PROOF_TYPE:
        raise InvalidProof("The DPoP proof's typ is not dpop+jwt.")
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise InvalidProof("The DPoP proof's algorithm is not accepted.")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & set(jwk):
        raise InvalidProof("The DPoP proof's jwk header is not a public key.")
    if "crit" in header:
        # RFC 7515 §4.1.11: no extension is understood here.
        raise InvalidProof("The DPoP proof uses critical header parameters.")
    kid = header.get("kid")
    if "kid" in header and (not isinstance(kid, str) or not kid):
        raise InvalidProof("The DPoP proof's signature or key is invalid.")
    try:
        jkt = thumbprint(jwk)
        # The key is the header's own: a kid there names it, nothing else.
        key = public_key_from_jwk(
            {**jwk, "kid": kid if isinstance(kid, str) and kid else jkt}, algorithm
        )
    except (ValueError, UnusableKey):
        raise InvalidProof("The DPoP proof's signature or key is invalid.") from None
    return algorithm, jkt, key


def _claims(payload: bytes) -> dict[str, t.Any]:
    try:
        claims = json.loads(
            payload.decode("utf-8"), parse_constant=tokens.reject_constant
        )
    except (ValueError, RecursionError):
        raise InvalidProof("The DPoP proof's payload is not JSON.") from None
    if not isinstance(claims, dict):
        raise InvalidProof("The DPoP proof's payload is not a JSON object.")
    return claims
