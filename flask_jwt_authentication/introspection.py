"""The resource servers allowed to introspect tokens (RFC 7662 §2.1).

``JWT_AUTH_INTROSPECTION_CLIENTS`` maps a client id to its secret, given either in
plain text or, as recommended, as a Werkzeug password hash
(:func:`werkzeug.security.generate_password_hash`). Credentials are checked in
constant time, and an unknown client id costs what a known one does, so the
answer tells nothing of which ids exist.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import typing as t
from urllib.parse import unquote_plus

from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from .settings_registry import read

#: Prefixes of the hash formats Werkzeug writes (``method$salt$hash``).
_HASH_PREFIXES = ("scrypt:", "pbkdf2:")
_KEY = "JWT_AUTH_INTROSPECTION_CLIENTS"


@dataclasses.dataclass(frozen=True)
class IntrospectionClient:
    """One configured resource server; ``repr`` never shows the secret."""

    client_id: str
    #: Whether the secret is configured as a Werkzeug hash.
    hashed: bool
    secret: str = dataclasses.field(repr=False)

    def verify(self, presented: str) -> bool:
        """Whether ``presented`` is this client's secret (constant time)."""
        if self.hashed:
            return check_password_hash(self.secret, presented)
        return hmac.compare_digest(self.secret.encode(), presented.encode())


@dataclasses.dataclass(frozen=True)
class IntrospectionClients:
    """The configured clients, and a stand-in an unknown id is checked against."""

    clients: t.Mapping[str, IntrospectionClient]
    dummy: IntrospectionClient

    def authenticate(self, client_id: str, secret: str) -> IntrospectionClient | None:
        """The client whose credentials these are, or ``None``.

        RFC 6749 §2.3.1 has clients form-encode id and secret before Basic
        encoding; credentials sent unencoded are accepted too.
        """
        ok = False
        found: IntrospectionClient | None = None
        for cid, sec in _variants(client_id, secret):
            client = self.clients.get(cid)
            # The same work whether the id exists or not.
            matched = (client or self.dummy).verify(sec)
            if client is not None and matched and not ok:
                ok, found = True, client
        return found


def _variants(client_id: str, secret: str) -> list[tuple[str, str]]:
    decoded = (unquote_plus(client_id), unquote_plus(secret))
    return (
        [(client_id, secret)]
        if decoded == (client_id, secret)
        else [
            (client_id, secret),
            decoded,
        ]
    )


def load_clients(config: t.Mapping[str, t.Any]) -> IntrospectionClients:
    """Read and check ``JWT_AUTH_INTROSPECTION_CLIENTS`` at start-up.

    :raises ConfigurationError: the setting is not a mapping of non-empty strings.
    """
    value: dict[str, str] = read(config, _KEY)
    clients: dict[str, IntrospectionClient] = {}
    method = "scrypt"
    for client_id, secret in value.items():
        hashed = _is_hash(secret)
        if hashed:
            method = secret.split("$", 1)[0]
        clients[client_id] = IntrospectionClient(client_id, hashed, secret)
    any_hashed = any(c.hashed for c in clients.values())
    filler = secrets.token_urlsafe(32)
    dummy = IntrospectionClient(
        "",
        any_hashed,
        generate_password_hash(filler, method=method) if any_hashed else filler,
    )
    return IntrospectionClients(clients, dummy)


def _is_hash(secret: str) -> bool:
    """Whether ``secret`` is written in a Werkzeug hash format."""
    return secret.startswith(_HASH_PREFIXES) and secret.count("$") == 2


def client_listing(config: t.Mapping[str, t.Any]) -> list[tuple[str, bool]]:
    """(client id, whether its secret is hashed) of each client of a configuration
    ``init_app`` accepted, sorted; never a secret, and no hashing work."""
    value = config.get(_KEY) or {}
    return sorted((str(cid), _is_hash(str(secret))) for cid, secret in value.items())
