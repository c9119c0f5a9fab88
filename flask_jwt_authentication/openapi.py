"""The OpenAPI 3.1 document of the endpoints.

The package ships it as ``openapi.json``, written for the default settings;
:func:`openapi_document` adapts a copy to an application: its URL prefix, cookie
mode and the names it uses, where it is served, and whether it serves the
document itself (:data:`JWT_AUTH_OPENAPI`).
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import json
import typing as t
from importlib import resources

from flask import Flask
from flask import Response
from flask import current_app
from flask import has_app_context
from flask import has_request_context
from flask import jsonify
from flask import request

from .config import DEFAULTS
from .config import Settings
from .config import load_settings
from .state import get_state

#: The prefix the shipped document is written with.
DEFAULT_PREFIX: str = DEFAULTS["JWT_AUTH_URL_PREFIX"]
#: Where, under the prefix, the document is served when enabled.
DOCUMENT_PATH = "/openapi.json"

#: Cookie mode answers and reads with these components instead.
_COOKIE_MODE_REFS = {
    "#/components/responses/TokenPair": "#/components/responses/CookieTokenPair",
    "#/components/responses/LoggedOut": "#/components/responses/CookieLoggedOut",
    "#/components/requestBodies/Refresh": "#/components/requestBodies/CookieRefresh",
}
#: The parameters cookie mode adds, by operation.
_COOKIE_PARAMETERS = {
    "/tokens": ["CookieModeHeader"],
    "/refresh": ["RefreshCookie", "RefreshCsrfHeader"],
}
#: Characters of an RFC 9110 token that are special in a regular expression.
_REGEX_SPECIAL = frozenset("$*+.^|")


@functools.cache
def _shipped() -> dict[str, t.Any]:
    """The document as shipped, parsed once; callers copy it before changing it."""
    package = resources.files("flask_jwt_authentication")
    text = package.joinpath("openapi.json").read_text("utf-8")
    return t.cast(dict[str, t.Any], json.loads(text))


def openapi_document(app: Flask | None = None) -> dict[str, t.Any]:
    """The OpenAPI 3.1 document of the endpoints, for ``app``'s settings.

    The paths carry the app's :data:`JWT_AUTH_URL_PREFIX`; in cookie mode
    (:data:`JWT_AUTH_REFRESH_COOKIE`) the token pair leaves out the refresh token,
    a log-in and a refresh take the cookie's header, a refresh the cookie, both by
    their configured names, and the answers that set or clear the cookie say so.
    ``{prefix}/openapi.json`` is listed only when :data:`JWT_AUTH_OPENAPI` serves
    it. The server URL is the app's root: the script root of the current request,
    else ``SERVER_NAME`` and ``APPLICATION_ROOT``.

    :param app: the application; by default the current one. Outside an
        application context and without ``app``, the document describes the
        default settings.
    :returns: a new dict, the caller's to change.
    :raises RuntimeError: the extension is not initialised on ``app``.

    .. versionadded:: 0.1
    """
    if app is None and has_app_context():
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = get_state(app).settings if app is not None else load_settings({}, "")
    document = copy.deepcopy(_shipped())
    document["info"]["version"] = _version(document["info"]["version"])
    document["servers"] = [{"url": _server_url(app)}]
    paths: dict[str, t.Any] = document["paths"]
    if not settings.openapi:
        del paths[DEFAULT_PREFIX + DOCUMENT_PATH]
    if settings.refresh_cookie:
        _cookie_mode(document, settings)
    document["paths"] = {
        _with_prefix(path, settings.url_prefix): item for path, item in paths.items()
    }
    return document


def _version(shipped: str) -> str:
    """The installed package's version; the shipped one when not installed."""
    try:
        return importlib.metadata.version("flask_jwt_authentication")
    except importlib.metadata.PackageNotFoundError:
        return shipped


def _server_url(app: Flask | None) -> str:
    """Where the paths are rooted: relative to the document when it is served, so
    it holds behind any proxy."""
    if has_request_context():
        current = current_app._get_current_object()  # type: ignore[attr-defined]
        if app is None or app is current:
            return request.script_root or "/"
    if app is None:
        return "/"
    root = (app.config.get("APPLICATION_ROOT") or "/").rstrip("/")
    server_name = app.config.get("SERVER_NAME")
    if server_name:
        scheme = app.config.get("PREFERRED_URL_SCHEME") or "http"
        return f"{scheme}://{server_name}{root}"
    return root or "/"


def _with_prefix(path: str, prefix: str) -> str:
    if path.startswith(DEFAULT_PREFIX + "/"):
        return prefix + path.removeprefix(DEFAULT_PREFIX)
    return path


def _cookie_mode(document: dict[str, t.Any], settings: Settings) -> None:
    """Describe cookie mode: other components, the cookie and the header a log-in
    and a refresh from the cookie need."""
    paths = document["paths"]
    for item in paths.values():
        for operation in item.values():
            _swap_refs(operation)
    for path, names in _COOKIE_PARAMETERS.items():
        operation = paths[DEFAULT_PREFIX + path]["post"]
        operation.setdefault("parameters", []).extend(
            {"$ref": f"#/components/parameters/{name}"} for name in names
        )
    components = document["components"]
    parameters = components["parameters"]
    parameters["RefreshCookie"]["name"] = settings.refresh_cookie_name
    for name in ("CookieModeHeader", "RefreshCsrfHeader"):
        parameters[name]["name"] = settings.refresh_cookie_csrf_header
    name = _regex_literal(settings.refresh_cookie_name)
    headers = components["headers"]
    headers["SetRefreshCookie"]["schema"]["pattern"] = f"^{name}=[^;]+;"
    headers["ClearRefreshCookie"]["schema"]["pattern"] = f"^{name}=;"


def _swap_refs(node: t.Any) -> None:
    if isinstance(node, dict):
        target = node.get("$ref")
        if target in _COOKIE_MODE_REFS:
            node["$ref"] = _COOKIE_MODE_REFS[target]
        for value in node.values():
            _swap_refs(value)
    elif isinstance(node, list):
        for value in node:
            _swap_refs(value)


def _regex_literal(name: str) -> str:
    """``name`` as a pattern matching itself, in both Python's and ECMA-262's
    syntax (``re.escape`` adds escapes the latter refuses)."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in name)


def serve_document() -> Response:
    """``GET {prefix}/openapi.json``: the document for the current application."""
    return jsonify(openapi_document())
