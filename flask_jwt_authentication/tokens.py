"""Access tokens: building, signing and verifying them.

Pure functions over :class:`~flask_jwt_authentication.config.Settings` and a
:class:`~flask_jwt_authentication.keys.KeySet`: no Flask, no database. The compact
JWS is parsed once, strictly, and its signature checked with PyJWT's algorithm
implementations; the claim checks of RFC 7519 §4.1, RFC 9068 §4 and RFC 8725 §3 are
done here, in the order the contract gives.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import time
import typing as t
import uuid

from .keys import Key
from .keys import KeySet
from .keys import b64url

if t.TYPE_CHECKING:
    from .config import Settings

#: The access token's ``typ`` header (RFC 9068 §2.1).
ACCESS_TOKEN_TYPE = "at+jwt"


class TokenError(ValueError):
    """A token is not a valid access token; the message says why.

    Raised by this module, which knows nothing of HTTP: the decorator and the
    standard endpoints answer it with
    :class:`~flask_jwt_authentication.errors.InvalidToken` (401).
    """


#: ``typ`` values accepted when verifying, compared case-insensitively (RFC 9068 §4).
_ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: Claims the extension writes and receivers of ``jwt_created`` may not change.
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "uid", "aud", "iat", "nbf", "exp", "jti", "sid", "auth_time", "cnf"}
)
#: Tokens longer than this are refused before anything is decoded.
MAX_TOKEN_LENGTH = 8192
#: The longest ``jti`` and ``sub`` accepted.
_MAX_ID_LENGTH = 255

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")

#: The order of each ECDSA algorithm's curve (SEC 2, §2.4.2, §2.5.1, §2.6.1). Of
#: the two valid signatures (r, s) and (r, n - s) only the one with s <= n / 2 is
#: made and accepted, so each token has one spelling.
_EC_ORDERS: t.Mapping[str, int] = {
    "ES256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ES384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "ES512": int(
        "01" + "F" * 65 + "A"
        "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}


def low_s(algorithm: str, signature: bytes) -> bytes:
    """An ECDSA signature (``r || s``, RFC 7518 §3.4) in its low-S form; any
    other signature as it is."""
    order = _EC_ORDERS.get(algorithm)
    if order is None or len(signature) % 2:
        return signature
    size = len(signature) // 2
    s = int.from_bytes(signature[size:], "big")
    if s <= order // 2:
        return signature
    return signature[:size] + (order - s).to_bytes(size, "big")


def _is_high_s(algorithm: str, signature: bytes) -> bool:
    order = _EC_ORDERS.get(algorithm)
    if order is None or len(signature) % 2:
        return False
    return int.from_bytes(signature[len(signature) // 2 :], "big") > order // 2


def new_jti() -> str:
    """A fresh token id: 128 random bits."""
    return secrets.token_urlsafe(16)


def access_claims(
    settings: Settings,
    identity: str | int,
    session_id: str,
    *,
    now: int | None = None,
    jti: str | None = None,
    auth_time: int | None = None,
) -> dict[str, t.Any]:
    """The registered claims of a new access token.

    :param settings: the application's settings (TTL, issuer, audience).
    :param identity: the user's identity, written as ``uid`` and, as a string, ``sub``.
    :param session_id: the login session (token family), written as ``sid``.
    :param now: the issue time, seconds since the epoch; defaults to the clock.
    :param jti: the token id; a fresh random one by default.
    :param auth_time: when the user last gave a password in this session
        (RFC 9470 §3, OpenID Connect Core §2); the issue time by default.
    """
    issued = int(time.time()) if now is None else now
    claims: dict[str, t.Any] = {
        "iss": settings.issuer,
        "sub": str(identity),
        "uid": identity,
        "iat": issued,
        "nbf": issued,
        "exp": issued + settings.access_token_ttl,
        "jti": jti or new_jti(),
        "sid": session_id,
        "auth_time": issued if auth_time is None else auth_time,
    }
    if settings.audience:
        claims["aud"] = settings.audience[0]
    return claims


def _json(value: t.Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")


def encode(
    claims: t.Mapping[str, t.Any], key: Key, *, typ: str = ACCESS_TOKEN_TYPE
) -> str:
    """Sign ``claims`` with ``key`` into a compact JWS (RFC 7515 §7.1).

    :param claims: a JSON-serialisable mapping.
    :param key: the signing key; its algorithm and ``kid`` go into the header.
    :param typ: the ``typ`` header.
    :raises TypeError, ValueError: the claims are not JSON-serialisable.
    """
    header = {"alg": key.algorithm, "kid": key.kid, "typ": typ}
    signing_input = b64url(_json(header)) + "." + b64url(_json(dict(claims)))
    signature = key.jws_algorithm.sign(signing_input.encode("ascii"), key.signing_key)
    return signing_input + "." + b64url(low_s(key.algorithm, signature))


def _b64decode(segment: str) -> bytes:
    """Strict base64url: the URL-safe alphabet only, no padding, canonical bits."""
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise TokenError("The token is malformed.")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("The token is malformed.") from None
    # Unused trailing bits must be zero, so each token has one encoding only.
    if b64url(data) != segment:
        raise TokenError("The token is malformed.")
    return data


def _no_duplicates(pairs: list[tuple[str, t.Any]]) -> dict[str, t.Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # RFC 7515 §5.2 and RFC 8725 §3.1: refuse ambiguous JSON.
        raise ValueError("duplicate member")
    return result


def _json_object(data: bytes, what: str) -> dict[str, t.Any]:
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=reject_constant,
        )
    except (ValueError, RecursionError):
        raise TokenError(f"The token {what} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise TokenError(f"The token {what} is not a JSON object.")
    return value


def reject_constant(name: str) -> t.NoReturn:
    """``parse_constant`` for :func:`json.loads`: ``NaN`` and ``Infinity`` are
    not JSON (RFC 8259 §6); the token parser and the endpoints' body parser both
    refuse them."""
    raise ValueError(f"{name} is not JSON")


def _segments(token: object) -> tuple[str, str, str]:
    """The three segments of a compact JWS, refused early when oversized."""
    if not isinstance(token, str) or not token:
        raise TokenError("The token is malformed.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("The token is too long.")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("The token is malformed.")
    return parts[0], parts[1], parts[2]


def unverified_header(token: object) -> dict[str, t.Any]:
    """The protected header of a compact JWS, parsed as strictly as
    :func:`verify_signature` does, but not verified.

    Only for choosing where keys come from (the ``kid``) before verification;
    nothing in it is to be trusted.

    :raises TokenError: the token or its header is malformed.
    """
    return _json_object(_b64decode(_segments(token)[0]), "header")


def verify_signature(
    token: object, keyset: KeySet, algorithm: str, *, canonical: bool = True
) -> tuple[dict[str, t.Any], bytes]:
    """Parse a compact JWS and verify its signature.

    The algorithm comes from ``algorithm`` (the configuration), never from the token
    (RFC 8725 §3.1); the key is chosen by ``kid`` among the key set's keys.

    :param canonical: refuse an ECDSA signature whose ``s`` is the high one of
        the pair (see :func:`low_s`): tokens signed here never have it. A
        resource server verifying another issuer's tokens accepts both, since
        most signers do not normalise.

    :returns: the protected header and the payload bytes.
    :raises TokenError: the token is malformed, uses another algorithm, names an
        unknown key, carries critical extensions, or its signature does not verify.
    """
    header_segment, payload_segment, signature_segment = _segments(token)
    header = _json_object(_b64decode(header_segment), "header")
    payload = _b64decode(payload_segment)
    signature = _b64decode(signature_segment)
    if header.get("alg") != algorithm:
        raise TokenError("The token is signed with an unexpected algorithm.")
    if "crit" in header:
        # RFC 7515 §4.1.11: no extension is understood here, so none may be critical.
        raise TokenError("The token uses unsupported critical header parameters.")
    if "kid" in header and (not isinstance(header["kid"], str) or not header["kid"]):
        # RFC 7515 §4.1.4: a kid, when present, is a string; null is not "absent".
        raise TokenError("The token's kid header is not a non-empty string.")
    keys = keyset.candidates(header.get("kid"))
    if not keys:
        raise TokenError("The token is signed with an unknown key.")
    if canonical and _is_high_s(algorithm, signature):
        raise TokenError("The token signature is not in its canonical form.")
    signing_input = (header_segment + "." + payload_segment).encode("ascii")
    for key in keys:
        if key.algorithm == algorithm and key.jws_algorithm.verify(
            signing_input, key.verifying_key, signature
        ):
            return header, payload
    raise TokenError("The token signature is invalid.")


def _numeric_date(claims: t.Mapping[str, t.Any], name: str) -> float:
    value = claims.get(name)
    if value is None:
        raise TokenError(f"The token has no {name} claim.")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenError(f"The token's {name} claim is not a NumericDate.")
    try:
        date = float(value)
    except OverflowError:
        # An integer beyond the range of a float (JSON allows any number of digits).
        raise TokenError(f"The token's {name} claim is not a NumericDate.") from None
    if not math.isfinite(date):
        raise TokenError(f"The token's {name} claim is not a NumericDate.")
    return date


def _identifier(claims: t.Mapping[str, t.Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > _MAX_ID_LENGTH:
        raise TokenError(f"The token's {name} claim is missing or invalid.")
    return value


def check_claims(
    header: t.Mapping[str, t.Any],
    claims: t.Mapping[str, t.Any],
    settings: Settings,
    *,
    now: float | None = None,
) -> None:
    """Check the claims of a token whose signature verified.

    In order: ``exp``, ``nbf``, ``iat`` (each with ``settings.leeway``), ``iss``,
    ``aud``, the ``typ`` header, then the required claims ``sub``, ``uid``, ``jti``
    and ``sid`` and their types.

    :raises TokenError: a check failed; the description says which.
    """
    current = time.time() if now is None else now
    leeway = settings.leeway
    # RFC 7519 §4.1.4: the current time must be before exp.
    if current >= _numeric_date(claims, "exp") + leeway:
        raise TokenError("The token has expired.")
    if _numeric_date(claims, "nbf") > current + leeway:
        raise TokenError("The token is not valid yet.")
    if _numeric_date(claims, "iat") > current + leeway:
        raise TokenError("The token was issued in the future.")
    if claims.get("iss") != settings.issuer:
        raise TokenError("The token has another issuer.")
    audience = claims.get("aud")
    if settings.audience:
        accepted = [audience] if isinstance(audience, str) else audience
        if not isinstance(accepted, list) or not any(
            isinstance(a, str) and a in settings.audience for a in accepted
        ):
            raise TokenError("The token is meant for another audience.")
    elif audience is not None:
        # RFC 7519 §4.1.3: a token with an audience we are not part of is refused.
        raise TokenError("The token is meant for another audience.")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES:
        # RFC 8725 §3.11 / RFC 9068 §4: explicit typing keeps other JWTs out.
        raise TokenError("The token is not an access token.")
    subject = _identifier(claims, "sub")
    uid = claims.get("uid")
    if isinstance(uid, bool) or not isinstance(uid, (str, int)) or str(uid) != subject:
        raise TokenError("The token's uid claim is missing or invalid.")
    _identifier(claims, "jti")
    session = _identifier(claims, "sid")
    try:
        canonical = str(uuid.UUID(session)) == session
    except ValueError:
        canonical = False
    if not canonical:
        raise TokenError("The token's sid claim is missing or invalid.")


def decode(
    token: object,
    settings: Settings,
    keyset: KeySet,
    *,
    now: float | None = None,
    canonical: bool = True,
) -> dict[str, t.Any]:
    """Verify an access token and return its claims.

    Runs :func:`verify_signature` and :func:`check_claims`; revocation, the
    ``jwt_decoded`` receivers and the user are checked by the caller.

    :param token: the compact JWS from the request.
    :param settings: the application's settings.
    :param keyset: the keys that may verify.
    :param now: the current time, seconds since the epoch; defaults to the clock.
    :param canonical: see :func:`verify_signature`.
    :raises TokenError: the token is not a valid access token.
    """
    header, payload = verify_signature(
        token, keyset, settings.algorithm, canonical=canonical
    )
    claims = _json_object(payload, "payload")
    check_claims(header, claims, settings, now=now)
    return claims
