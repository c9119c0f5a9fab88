"""HTTP errors of the extension.

Every error is a Werkzeug :class:`~werkzeug.exceptions.HTTPException` that renders
itself as ``{"error": CODE, "error_description": TEXT}`` (RFC 6749 §5.2, RFC 6750 §3.1),
so a host application needs no error handler of its own and frameworks that turn
unknown exceptions into 500s leave these alone.
"""

from __future__ import annotations

import json
import typing as t

from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import Forbidden
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.exceptions import MethodNotAllowed as _MethodNotAllowed
from werkzeug.exceptions import NotFound as _NotFound
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.exceptions import TooManyRequests as _TooManyRequests
from werkzeug.exceptions import Unauthorized

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


_E = t.TypeVar("_E", bound="JWTAuthError")


def _quote(value: str) -> str:
    """Quote a value for an auth-param (RFC 7235 §2.1 quoted-string).

    Descriptions are ours, but the characters RFC 6750 §3 forbids in them are removed
    anyway, so no value can break the header.
    """
    cleaned = "".join(c for c in value if c >= " " and c not in '"\\\x7f')
    return f'"{cleaned}"'


class JWTAuthError(HTTPException):
    """Base class of the extension's HTTP errors.

    :param description: the human-readable ``error_description``.
    :param headers: extra response headers.

    Subclasses set :attr:`code` (the HTTP status) and :attr:`error` (the RFC 6749 /
    RFC 6750 error code).
    """

    #: The ``error`` member of the JSON body.
    error: str = "invalid_request"
    #: False for a request that carried no credentials at all: RFC 6750 §3.1 then
    #: wants the challenge without an error attribute.
    include_error_in_challenge = True

    def __init__(
        self,
        description: str | None = None,
        *,
        headers: t.Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description=description)
        self.extra_headers: dict[str, str] = dict(headers or {})

    def challenge(self, realm: str | None = None) -> str:
        """The ``WWW-Authenticate`` challenge of this error (RFC 6750 §3).

        :param realm: the protection space; left out when ``None`` (RFC 6750 §3
            makes it optional).
        """
        params = [] if realm is None else [f"realm={_quote(realm)}"]
        if self.include_error_in_challenge:
            params.append(f"error={_quote(self.error)}")
            if self.description:
                params.append(f"error_description={_quote(self.description)}")
        return "Bearer " + ", ".join(params) if params else "Bearer"

    def with_realm(self: _E, realm: str) -> _E:
        """Add the ``WWW-Authenticate`` challenge for ``realm`` and return self."""
        self.extra_headers["WWW-Authenticate"] = self.challenge(realm)
        return self

    def to_dict(self) -> dict[str, str]:
        """The JSON body of the error."""
        return {"error": self.error, "error_description": self.description or ""}

    def get_body(
        self,
        environ: WSGIEnvironment | None = None,
        scope: dict[str, t.Any] | None = None,
    ) -> str:
        return json.dumps(self.to_dict())

    def get_headers(
        self,
        environ: WSGIEnvironment | None = None,
        scope: dict[str, t.Any] | None = None,
    ) -> list[tuple[str, str]]:
        headers = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
        ]
        headers.extend(self.extra_headers.items())
        if self.code == 401 and "WWW-Authenticate" not in self.extra_headers:
            # RFC 7235 §3.1: a 401 always carries a challenge; the endpoints add
            # their realm (see with_realm), this is the fallback without one.
            headers.append(("WWW-Authenticate", self.challenge()))
        return headers


class InvalidRequest(JWTAuthError, BadRequest):
    """400: the request body or a parameter is malformed (RFC 6749 §5.2)."""

    error = "invalid_request"


class UnsupportedMediaType(InvalidRequest):
    """415: the body is not JSON."""

    code = 415


class PayloadTooLarge(JWTAuthError, RequestEntityTooLarge):
    """413: the body is larger than ``JWT_AUTH_MAX_BODY_SIZE``."""

    error = "invalid_request"


class NotFound(JWTAuthError, _NotFound):
    """404: no such endpoint under the prefix, or no such session of the caller."""

    error = "not_found"


class MethodNotAllowed(JWTAuthError, _MethodNotAllowed):
    """405 with ``Allow`` for the extension's endpoints."""

    error = "invalid_request"

    def __init__(self, valid_methods: t.Iterable[str]) -> None:
        allowed = sorted(set(valid_methods) | {"OPTIONS"})
        super().__init__(
            "Method not allowed; use "
            + ", ".join(m for m in allowed if m != "OPTIONS"),
            headers={"Allow": ", ".join(allowed)},
        )


class InvalidGrant(JWTAuthError, Unauthorized):
    """401: the credentials or the refresh token are not valid (RFC 6749 §5.2).

    Answered as 401 rather than 400, so, as RFC 7235 §3.1 requires of every 401,
    it carries a challenge: ``WWW-Authenticate: Bearer realm=...,
    error="invalid_grant", error_description=...``.
    """

    error = "invalid_grant"


class AccessDenied(JWTAuthError, Forbidden):
    """403: the user may not obtain or refresh tokens."""

    error = "access_denied"


class InvalidToken(JWTAuthError, Unauthorized):
    """401: the access token is missing, malformed, expired, revoked or rejected.

    Rendered with ``WWW-Authenticate: Bearer realm=..., error="invalid_token"`` as
    RFC 6750 §3.1 describes. :meth:`with_realm` fills in the realm of the app.
    """

    error = "invalid_token"


class InsufficientUserAuthentication(InvalidToken):
    """401: the user authenticated too long ago for this route (RFC 9470 §3).

    The challenge carries ``max_age`` so that the client knows to ask the user for
    the password again and retry with the new token.

    :param max_age: the largest accepted age of ``auth_time``, in seconds.
    """

    error = "insufficient_user_authentication"

    def __init__(self, max_age: int) -> None:
        super().__init__(
            f"A log-in within the last {max_age} seconds is required: "
            "authenticate again."
        )
        self.max_age = max_age

    def challenge(self, realm: str | None = None) -> str:
        """The Bearer challenge with ``max_age`` (RFC 9470 §3)."""
        return super().challenge(realm) + f", max_age={self.max_age}"


class MissingToken(InvalidToken):
    """401: the request carries no bearer token."""

    include_error_in_challenge = False


class TokenRejected(InvalidToken):
    """Raise from a :data:`~flask_jwt_authentication.signals.jwt_decoded` receiver to
    refuse a token; the request answers 401 ``invalid_token``.

    :param description: shown to the client as ``error_description``.
    """

    def __init__(self, description: str = "The token was rejected.") -> None:
        super().__init__(description)


class InsufficientScope(JWTAuthError, Forbidden):
    """403: the user lacks the permission a route requires (RFC 6750 §3.1)."""

    error = "insufficient_scope"

    def challenge(self, realm: str | None = None) -> str:
        """``Bearer realm=..., error="insufficient_scope"`` (RFC 6750 §3.1)."""
        prefix = "" if realm is None else f"realm={_quote(realm)}, "
        return f"Bearer {prefix}error={_quote(self.error)}"


class TooManyRequests(JWTAuthError, _TooManyRequests):
    """429 with ``Retry-After``."""

    error = "too_many_requests"

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description, headers={"Retry-After": str(max(1, retry_after))})


class TemporarilyUnavailable(JWTAuthError, ServiceUnavailable):
    """503: storage is unreachable; nothing was written."""

    error = "temporarily_unavailable"

    def __init__(
        self,
        description: str = "The service is temporarily unavailable; try again shortly.",
        retry_after: int = 5,
    ) -> None:
        super().__init__(description, headers={"Retry-After": str(retry_after)})


class ServerMisconfigured(JWTAuthError, InternalServerError):
    """500 ``server_error``: the application lacks a part the extension needs
    (a user callback, its tables). The log says which and how to fix it; the
    client learns only that the server is at fault.
    """

    error = "server_error"

    def __init__(
        self,
        description: str = (
            "The authentication service is not set up completely;"
            " the server log says what is missing."
        ),
    ) -> None:
        super().__init__(description)


class ConfigurationError(RuntimeError):
    """The application's ``JWT_AUTH_*`` configuration is invalid.

    Raised by :meth:`~flask_jwt_authentication.JWTAuthentication.init_app`, at start-up,
    with a message naming the key and what to do.

    :param message: what is wrong and how to fix it.
    :param setting: the configuration key at fault, when there is one.
    """

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        #: The configuration key at fault (``JWT_AUTH_...``), or ``None``.
        self.setting = setting


class InvalidDPoPProof(InvalidRequest):
    """400: the DPoP proof of a token request is missing or fails a check of
    RFC 9449 §4.3 (RFC 9449 §5)."""

    error = "invalid_dpop_proof"


class DPoPProofRefused(InvalidToken):
    """401: the DPoP proof of a request to a protected route is missing, fails a
    check, or was used before (RFC 9449 §7.1)."""

    error = "invalid_dpop_proof"


class UseDPoPNonce(InvalidDPoPProof):
    """400 ``use_dpop_nonce``: a token request's proof lacks the nonce the
    server gives in its ``DPoP-Nonce`` header, or carries an old one (RFC 9449
    §8); the client signs a new proof with it and asks again."""

    error = "use_dpop_nonce"


class DPoPNonceRequired(DPoPProofRefused):
    """401 ``use_dpop_nonce``: the proof of a request to a protected route lacks
    the current server nonce of the ``DPoP-Nonce`` header (RFC 9449 §9)."""

    error = "use_dpop_nonce"


class InvalidClient(JWTAuthError, Unauthorized):
    """401: an introspection client's HTTP Basic credentials are missing or wrong
    (RFC 7662 §2.1, RFC 6749 §5.2), with ``WWW-Authenticate: Basic``."""

    error = "invalid_client"

    def __init__(self, description: str, realm: str) -> None:
        super().__init__(
            description, headers={"WWW-Authenticate": f"Basic realm={_quote(realm)}"}
        )


class UnsupportedTokenType(InvalidRequest):
    """400: the server cannot revoke this kind of token (RFC 7009 §2.2.1)."""

    error = "unsupported_token_type"
