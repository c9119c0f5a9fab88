"""HTTP conventions kept at the edge of the endpoints.

- A 404 or 405 under ``JWT_AUTH_URL_PREFIX`` answers the JSON error body of
  RFC 6749 §5.2, like every other error of the endpoints; the application's own
  routes keep Flask's answers (and the application's handlers).
- Every 401 of the endpoints carries a ``WWW-Authenticate`` challenge with the
  realm (RFC 7235 §3.1, RFC 6750 §3).
- A 204 carries no ``Content-Type``: it has no content to describe (RFC 9110 §8.3).
"""

from __future__ import annotations

import typing as t

from flask import Response
from flask import request
from werkzeug.exceptions import MethodNotAllowed as RoutingMethodNotAllowed
from werkzeug.exceptions import NotFound as RoutingNotFound

from .errors import JWTAuthError
from .errors import MethodNotAllowed
from .errors import NotFound


def under(prefix: str, path: str) -> bool:
    """Whether ``path`` is the prefix itself or below it."""
    return path == prefix or path.startswith(prefix + "/")


def json_routing_errors(prefix: str) -> t.Callable[[], Response | None]:
    """A ``before_request`` function (for the whole app) that answers routing
    failures under ``prefix`` with the JSON error body.

    Flask raises the routing error only after the ``before_request`` functions,
    so this sees it first, and leaves every other path to the application. It
    answers rather than raises: the application's own 404 handler, if any, is
    for its own pages.
    """

    def check() -> Response | None:
        error = request.routing_exception
        if error is None or not under(prefix, request.path):
            return None
        if isinstance(error, RoutingMethodNotAllowed):
            return render(MethodNotAllowed(error.valid_methods or ()))
        if isinstance(error, RoutingNotFound):
            return render(NotFound("No such endpoint."))
        return None

    return check


def add_challenge(realm: t.Callable[[], str]) -> t.Callable[[JWTAuthError], Response]:
    """An error handler for the endpoints that gives a 401 without a challenge the
    ``Bearer`` challenge of ``realm()`` (``invalid_grant`` answers, for one)."""

    def handle(error: JWTAuthError) -> Response:
        if error.code == 401 and "WWW-Authenticate" not in error.extra_headers:
            error.with_realm(realm())
        return render(error)

    return handle


def render(error: JWTAuthError) -> Response:
    """The response of ``error``, as a Flask response."""
    return Response(error.get_body(), status=error.code, headers=error.get_headers())


def no_content_type_on_204(response: Response) -> Response:
    """An ``after_request`` function: a 204 loses the ``Content-Type`` Flask gives
    every response."""
    if response.status_code == 204:
        del response.headers["Content-Type"]
    return response
