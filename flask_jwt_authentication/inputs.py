"""Reading the endpoints' requests: bodies within the size cap, strict JSON
objects and string fields, the refresh token from the body or the cookie, and
the cookie mode's CSRF and content-type rules."""

from __future__ import annotations

import json
import typing as t

from flask import Response
from flask import request
from werkzeug.exceptions import HTTPException

from . import tokens
from .errors import AccessDenied
from .errors import InvalidRequest
from .errors import PayloadTooLarge
from .errors import UnsupportedMediaType
from .login import MAX_REFRESH_TOKEN_LENGTH
from .state import get_state

if t.TYPE_CHECKING:
    from .config import Settings


def read_json_object(*, required: bool = True) -> dict[str, t.Any]:
    """The request body as a JSON object, within the size cap.

    The body is parsed whatever its ``Content-Type``, so ``curl -d`` works, but it
    must be UTF-8 JSON (RFC 8259) holding an object.
    """
    data = read_body(get_state().settings.max_body_size)
    if not data.strip():
        if required:
            raise InvalidRequest("The request body must be a JSON object.")
        return {}
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=tokens.reject_constant)
    except (ValueError, RecursionError):
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return value


def read_body(cap: int) -> bytes:
    """The request body, at most ``cap`` bytes.

    :raises PayloadTooLarge: it is longer.
    :raises InvalidRequest: it cannot be read (a malformed chunked encoding,
        which each WSGI server reports with an exception of its own).
    """
    length = request.content_length
    if length is not None and length > cap:
        raise PayloadTooLarge(f"The request body is larger than {cap} bytes.")
    try:
        if length is not None:
            # Cached, so a body an application hook read first is still seen.
            data = request.get_data(cache=True)
        else:
            data = request.stream.read(cap + 1)
    except HTTPException:
        raise  # Werkzeug's own answers (413 for MAX_CONTENT_LENGTH, say)
    except Exception:
        # Werkzeug raises OSError or ValueError, gunicorn a ParseException of
        # its own (InvalidChunkSize): the client sent a body that cannot be read.
        raise InvalidRequest(
            "The request body cannot be read: its transfer encoding is malformed."
        ) from None
    if len(data) > cap:
        raise PayloadTooLarge(f"The request body is larger than {cap} bytes.")
    return data


def string_field(
    body: t.Mapping[str, t.Any], name: str, max_length: int, *, required: bool = True
) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name!r} must be a non-empty string.")
    if len(value) > max_length:
        raise InvalidRequest(f"{name!r} is longer than {max_length} characters.")
    # NUL and lone surrogates cannot be stored or compared reliably: refuse them
    # before they reach a lookup or a database.
    if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
        raise InvalidRequest(f"{name!r} contains characters that are not allowed.")
    return value


def no_store(response: Response) -> Response:
    # RFC 6749 §5.1: token responses must not be cached.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def clear_refresh_cookie(settings: Settings, response: Response) -> Response:
    if settings.refresh_cookie:
        response.delete_cookie(
            settings.refresh_cookie_name,
            path=f"{settings.url_prefix}/refresh",
            secure=True,
            httponly=True,
            samesite="Strict",
        )
    return response


def presented_refresh_token(settings: Settings) -> str:
    """The refresh token of the request: the body's, else (cookie mode) the cookie's.

    A token taken from the cookie must come with the configured custom header
    (``X-Requested-With`` by default). Browsers attach cookies to cross-site
    requests but let a page add custom headers only to same-origin requests or
    after a CORS preflight the server does not grant, so the header proves the
    request came from our own front-end. This needs no state and no token in
    JavaScript, unlike a double-submit token; SameSite=Strict is the first line.
    """
    if settings.refresh_cookie:
        # Whatever carries the token, the answer sets the cookie: a cross-site
        # form posting a token of the attacker's in its body must not swap it.
        require_csrf_header(settings, "A refresh with the cookie")
        require_json_body()
    body = read_json_object(required=not settings.refresh_cookie)
    presented = string_field(
        body,
        "refresh_token",
        MAX_REFRESH_TOKEN_LENGTH,
        required=not settings.refresh_cookie,
    )
    if presented is not None:
        return presented
    cookie = request.cookies.get(settings.refresh_cookie_name)
    if not cookie:
        raise InvalidRequest("Send the refresh token in the body or its cookie.")
    field = {"refresh_token": cookie}
    return t.cast(str, string_field(field, "refresh_token", MAX_REFRESH_TOKEN_LENGTH))


def require_csrf_header(settings: Settings, what: str) -> None:
    """Cookie mode: refuse a request without the custom header (see
    :func:`_presented_refresh_token`)."""
    if not request.headers.get(settings.refresh_cookie_csrf_header):
        raise AccessDenied(
            f"{what} needs the {settings.refresh_cookie_csrf_header} header."
        )


def require_json_body() -> None:
    """Cookie mode: a body must be ``application/json``. A form (``text/plain``
    included) is a CORS-simple request a cross-site page can send without a
    preflight; such a request must never set the refresh cookie."""
    if request.content_length == 0 or (
        request.content_length is None and "Transfer-Encoding" not in request.headers
    ):
        return
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            "In cookie mode the request body must be application/json."
        )
