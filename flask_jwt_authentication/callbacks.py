"""The callbacks an application registers on the extension, their signatures
(as protocols) and their defaults."""

from __future__ import annotations

import logging
import typing as t

from .errors import ServerMisconfigured
from .state import ACCESS_PERMISSION
from .state import USE_PERMISSION

logger = logging.getLogger("flask_jwt_authentication")


class UserLookup(t.Protocol):
    """``(username) -> user or None``: finds the user logging in."""

    def __call__(self, username: str, /) -> t.Any: ...


class UserLoader(t.Protocol):
    """``(identity) -> user or None``: loads the user a token was issued to."""

    def __call__(self, identity: t.Any, /) -> t.Any: ...


class UserIdentity(t.Protocol):
    """``(user) -> str or int``: the identity written into tokens as ``uid``."""

    def __call__(self, user: t.Any, /) -> t.Any: ...


class UsernameNormalizer(t.Protocol):
    """``(username) -> str``: the form the user lookup and the flood counter use."""

    def __call__(self, username: str, /) -> str: ...


class RolesLoader(t.Protocol):
    """``(user) -> iterable of role names, or None``: the roles written into tokens."""

    def __call__(self, user: t.Any, /) -> t.Iterable[str] | None: ...


class PermissionChecker(t.Protocol):
    """``(user or None, permission) -> bool``."""

    def __call__(self, user: t.Any, permission: str, /) -> bool: ...


def _not_registered(decorator: str, signature: str) -> ServerMisconfigured:
    """Log what to register and return the error the client gets (500)."""
    logger.error(
        "No @jwt.%s is registered: decorate a function (%s) with @jwt.%s."
        " Until then the endpoints issue no tokens and answer 500 server_error.",
        decorator,
        signature,
        decorator,
    )
    return ServerMisconfigured()


def _missing_user_lookup(username: str) -> t.Any:
    raise _not_registered("user_lookup", "username -> user or None")


def _missing_user_loader(identity: t.Any) -> t.Any:
    raise _not_registered("user_loader", "identity -> user or None")


#: The callbacks every application registers, by decorator, with their defaults.
_REQUIRED_CALLBACKS = {
    "user_lookup": ("_user_lookup", _missing_user_lookup, "username -> user or None"),
    "user_loader": ("_user_loader", _missing_user_loader, "identity -> user or None"),
}


def _default_identity(user: t.Any) -> t.Any:
    return user.id


def _no_roles(user: t.Any) -> None:
    return None


def default_permission_checker(user: t.Any, permission: str) -> bool:
    """The default permissions: obtaining tokens is open to everyone, logging
    out to every authenticated user, administration to nobody, and any other
    permission to nobody (see :doc:`events`)."""
    if permission == ACCESS_PERMISSION:
        return True
    if permission == USE_PERMISSION:
        return user is not None
    return False
