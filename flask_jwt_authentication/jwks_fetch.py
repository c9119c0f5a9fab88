"""Fetching a JWK Set over HTTP(S) for a verify-only resource server: HTTP and
HTTPS only, redirects never downgraded, a size cap, and one total deadline per
fetch, however slowly the server answers.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request

if t.TYPE_CHECKING:
    from http.client import HTTPMessage

#: The largest JWKS document read, in bytes.
MAX_JWKS_SIZE = 1 << 20


class JWKSError(Exception):
    """The JWKS document could not be fetched, or is not a JWK Set."""


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects to HTTP(S) only, and never from HTTPS down to HTTP."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: t.IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        allowed = {"https"} if req.type == "https" else {"http", "https"}
        if scheme not in allowed:
            raise urllib.error.HTTPError(
                req.full_url, code, f"redirect to {scheme!r} refused", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Deadline:
    """One total deadline for a fetch: at its end every socket the fetch opened
    is shut down, which wakes a read blocked on a server that trickles its
    answer (a socket timeout applies to each read alone, so one byte every few
    seconds would never trip it)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(0.001, self.at - time.monotonic())

    def create_connection(
        self, address: tuple[str, int], timeout: t.Any = None, *args: t.Any
    ) -> socket.socket:
        """``socket.create_connection`` for the fetch's connections: within the
        deadline, and watched by it."""
        sock = socket.create_connection(address, self.remaining(), *args)
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            self._shut(sock)
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # closed already
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _watched(
    connection_class: type[http.client.HTTPConnection], deadline: _Deadline
) -> t.Callable[..., http.client.HTTPConnection]:
    def make(*args: t.Any, **kwargs: t.Any) -> http.client.HTTPConnection:
        connection = connection_class(*args, **kwargs)
        connection._create_connection = deadline.create_connection  # type: ignore[attr-defined]
        return connection

    return make


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPConnection, self.deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        options: dict[str, t.Any] = {"context": self._context}  # type: ignore[attr-defined]
        if hasattr(self, "_check_hostname"):  # Python < 3.12
            options["check_hostname"] = self._check_hostname
        return self.do_open(
            _watched(http.client.HTTPSConnection, self.deadline), req, **options
        )


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    """An opener for HTTP and HTTPS only (no ``file:``, ``ftp:`` or ``data:``),
    whose connections ``deadline`` watches."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        _HTTPHandler(deadline),
        _HTTPSHandler(deadline),
        urllib.request.HTTPDefaultErrorHandler(),
        _RedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def _read(response: t.IO[bytes]) -> bytes:
    """The response body, within the size cap."""
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(65536):
        size += len(chunk)
        if size > MAX_JWKS_SIZE:
            raise JWKSError(f"the document is larger than {MAX_JWKS_SIZE} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_jwks(url: str, timeout: float) -> object:
    """``GET`` the JWKS document at ``url`` and parse its JSON.

    :param url: an ``http`` or ``https`` URL.
    :param timeout: seconds the whole fetch may take, connecting, redirects and
        reading included, however slowly the server answers.
    :raises JWKSError: the server cannot be reached, answers an error, too slowly,
        too much, or not JSON.
    """
    deadline = _Deadline(timeout)
    # The scheme is checked at start-up (http or https); the opener handles no
    # other, and _RedirectHandler follows no redirect to another.
    request = urllib.request.Request(  # noqa: S310
        url, headers={"Accept": "application/jwk-set+json, application/json"}
    )
    try:
        with _opener(deadline).open(request, timeout=timeout) as response:
            body = _read(response)
    except urllib.error.HTTPError as e:
        raise JWKSError(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        if deadline.expired:
            raise JWKSError(f"no answer within {timeout} s") from None
        raise JWKSError(str(e.reason)) from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        if deadline.expired:
            raise JWKSError(f"no answer within {timeout} s") from None
        raise JWKSError(f"{type(e).__name__}: {e}") from None
    finally:
        deadline.cancel()
    if deadline.expired:
        raise JWKSError(f"no complete answer within {timeout} s")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise JWKSError("the response is not JSON") from None


def display_url(url: str) -> str:
    """``url`` for a log line: without credentials, query or fragment."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
