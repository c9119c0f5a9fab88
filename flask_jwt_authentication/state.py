"""The state the extension keeps for each application, and how to find it.

A leaf module: it imports no other module of the package that imports it back,
so the views, the decorators, the commands and the admin reach the state without
going through :mod:`.extension` (whose ``init_app`` builds it).
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import Flask
from flask import current_app

from . import tokens
from .errors import InvalidToken
from .passwords import is_active

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from . import config
    from .dpop_state import DPoPState
    from .extension import JWTAuthentication
    from .keyring import KeyRing
    from .keys import KeySet
    from .limits import FloodControl
    from .models import Tables
    from .overrides import SettingsStore
    from .remote import RemoteKeys
    from .revocation import RevocationCache
    from .revocation_feed import DatabaseFollower
    from .revocation_remote import HttpFollower
    from .store import Store

#: The key of the state in ``app.extensions``.
EXTENSION_KEY = "jwt_authentication"

#: Obtain and refresh tokens. Default: everyone.
ACCESS_PERMISSION = "access jwt authentication"
#: Log out. Default: every authenticated user.
USE_PERMISSION = "use jwt authentication"
#: Settings, keys and sessions. Default: nobody.
ADMINISTER_PERMISSION = "administer jwt authentication"


@dataclasses.dataclass
class AppState:
    """Everything the extension keeps for one application, under
    ``app.extensions["jwt_authentication"]``."""

    extension: JWTAuthentication
    db: SQLAlchemy
    keys: KeyRing
    tables: Tables
    store: Store
    flood: FloodControl
    #: The settings edited at run time, over the configuration.
    overrides: SettingsStore
    #: DPoP's nonces and the proofs seen.
    dpop: DPoPState
    #: Push mode (``JWT_AUTH_REVOCATION_SYNC = "push"``): the live revocations
    #: in memory, and what keeps them current.
    revocations: RevocationCache | None = None
    follower: DatabaseFollower | None = None

    def revocation_status(self, claims: t.Mapping[str, t.Any]) -> str | None:
        """Why the access token of ``claims`` is revoked, or ``None``: from
        memory in push mode while it is current, else from the database.

        :raises TemporarilyUnavailable: the database cannot be reached.
        """
        cache = self.revocations
        if cache is not None:
            if self.follower is not None:
                self.follower.ensure_running()
            if cache.is_current():
                return cache.status(
                    claims["jti"],
                    claims["sid"],
                    claims["uid"],
                    claims["iat"],
                )
        store = self.store
        with store.unavailable_on_error():
            return store.revocation_status(claims["jti"], claims["sid"], claims["iat"])

    @property
    def settings(self) -> config.Settings:
        """The settings in force: the configuration and the stored overrides
        (reloaded from the database when stale)."""
        return self.overrides.settings()

    @property
    def keyset(self) -> KeySet:
        """The key set in force (reloaded from the database when stale)."""
        return self.keys.keyset()


@dataclasses.dataclass
class VerifyOnlyState:
    """What the extension keeps for an application in verify-only mode, under
    ``app.extensions["jwt_authentication"]``: settings and the remote keys, no
    database."""

    extension: JWTAuthentication
    settings: config.Settings
    keys: RemoteKeys
    #: DPoP's nonces and the proofs seen.
    dpop: DPoPState
    #: Push mode: the issuer's revocation feed, followed (``None``: revocation
    #: is not checked, docs/resource-server.rst).
    feed: HttpFollower | None = None

    def decode(self, token: str) -> dict[str, t.Any]:
        """Verify an access token with the JWKS keys and return its claims.

        The same checks as :func:`.tokens.decode`; revocation is not checked.

        :raises InvalidToken: the token is not a valid access token.
        :raises TemporarilyUnavailable: no key could be fetched yet.
        """
        try:
            header = tokens.unverified_header(token)
            # Only a token that could verify may make us fetch for its kid.
            fits = header.get("alg") == self.settings.algorithm
            kid = header.get("kid") if fits else None
            return tokens.decode(
                token, self.settings, self.keys.keyset(kid), canonical=False
            )
        except tokens.TokenError as e:
            raise InvalidToken(str(e)) from None

    def load_user(self, identity: t.Any) -> t.Any:
        """The user loader's result for ``identity``; ``None`` without a loader.

        :raises InvalidToken: the loader found no user, or a disabled one.
        """
        if not self.extension.has_user_loader:
            return None
        user = self.extension.load_user(identity)
        if user is None or not is_active(user):
            raise InvalidToken("The token's user is unknown or disabled.")
        return user


def get_state(app: Flask | None = None) -> AppState:
    """The extension's state for ``app`` (default: the current app).

    :raises RuntimeError: the extension is not initialised on the app, or the app
        is in verify-only mode.
    """
    app = app or current_app
    try:
        state = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "JWTAuthentication is not initialised on this application: call"
            " jwt.init_app(app, db=db)."
        ) from None
    if not isinstance(state, AppState):
        raise RuntimeError(
            "This application only verifies tokens (JWT_AUTH_JWKS_URL is set): it"
            " has no database, sessions or keys of its own."
        )
    return state


__all__ = [
    "ACCESS_PERMISSION",
    "ADMINISTER_PERMISSION",
    "EXTENSION_KEY",
    "USE_PERMISSION",
    "AppState",
    "VerifyOnlyState",
    "get_state",
]
