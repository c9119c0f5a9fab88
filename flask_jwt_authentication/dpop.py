"""DPoP (RFC 9449): the pure parts, without Flask or a database.

The key thumbprint that binds tokens to a client's key (RFC 7638, RFC 9449 §6)
and the access-token hash a proof carries on resource requests (RFC 9449 §4.2).
"""

from __future__ import annotations

import base64
import hashlib
import json
import typing as t

#: The members of each key type that RFC 7638 §3.2 hashes, in lexicographic order.
_THUMBPRINT_MEMBERS: t.Mapping[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: t.Mapping[str, t.Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url: the ``jkt``.

    :param jwk: a public JWK (``EC``, ``OKP`` or ``RSA``).
    :raises ValueError: the key type is not supported or a required member is
        missing or not a string.
    """
    members = _THUMBPRINT_MEMBERS.get(t.cast(str, jwk.get("kty")))
    if members is None:
        raise ValueError(f"Unsupported JWK key type {jwk.get('kty')!r}.")
    required = {}
    for name in members:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"The JWK lacks the member {name!r}.")
        required[name] = value
    # RFC 7638 §3: no whitespace, members in lexicographic order.
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(token: str) -> str:
    """The ``ath`` claim of a proof: base64url(SHA-256(access token)), RFC 9449 §4.2."""
    return _b64url(hashlib.sha256(token.encode("ascii")).digest())
