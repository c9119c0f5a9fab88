"""The admin's foundations: the site a mount shares, the protected base view
(every page and action checks the signed-in user itself), the overview page."""

from __future__ import annotations

import dataclasses
import datetime
import re
import typing as t
from urllib.parse import urlsplit

from flask import Blueprint
from flask import make_response
from flask import redirect
from flask import request
from flask_admin import AdminIndexView  # type: ignore[import-untyped]
from flask_admin import BaseView
from flask_admin import expose as _flask_admin_expose
from werkzeug.wrappers import Response

from ..errors import JWTAuthError
from ..errors import TemporarilyUnavailable
from ..state import AppState
from ..state import get_state
from . import auth
from .forms import ActionForm

if t.TYPE_CHECKING:
    from flask_admin import Admin


#: Rows per page of the sessions and revoked-token lists.
PAGE_SIZE = 50
TEMPLATES = "jwt_authentication/admin/"
#: Why the admin ended a session, as the sessions table records it.
REVOKED_BY_ADMIN = "revoked by administrator"
#: JWK members that hold private material (RFC 7518 §6); never shown.
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_IDENTITY_NUMBER = re.compile(r"-?[0-9]{1,18}")

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def expose(url: str = "/", methods: tuple[str, ...] = ("GET",)) -> t.Callable[[F], F]:
    """Flask-Admin's ``expose``, typed: route ``url`` to the view method."""
    return t.cast("t.Callable[[F], F]", _flask_admin_expose(url, methods))


@dataclasses.dataclass
class AdminSite:
    """What the views of one mount share.

    :param admin: the Flask-Admin object the views are added to.
    :param session_lifetime: seconds an admin sign-in lasts.
    :param endpoint_prefix: the views' endpoints are ``{prefix}_{name}``.
    :param home: the endpoint a sign-in leads to by default.
    """

    admin: Admin
    session_lifetime: int
    endpoint_prefix: str
    home: str

    def endpoint(self, name: str) -> str:
        """The endpoint of the view ``name`` (``settings``, ``keys``...)."""
        return f"{self.endpoint_prefix}_{name}"

    @property
    def url(self) -> str:
        """The admin's URL prefix: the path of its cookie."""
        return str(self.admin.url).rstrip("/") or "/"

    def safe_next(self, target: str | None) -> str | None:
        """``target`` if it is a page of this admin, else ``None``: the sign-in
        never redirects to another site (an open redirect)."""
        if not target or "\\" in target or any(c < " " for c in target):
            return None
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not target.startswith("/"):
            return None
        path = parts.path
        if path == self.url or path.startswith(self.url.rstrip("/") + "/"):
            return target
        return None


def when(timestamp: int | None) -> str:
    """A time for the pages: UTC, to the second; "-" for none."""
    if timestamp is None:
        return "-"
    try:
        moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return str(timestamp)  # beyond the calendar: shown as it is stored
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _security_headers(response: Response) -> Response:
    if request.endpoint and request.endpoint.endswith(".static"):
        return response
    # Pages hold session ids and settings: no cache keeps them (RFC 9111 §5.2.2.5).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    # No other site may frame the pages and make a click land on a button.
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _page_number() -> int:
    """The ``page`` argument: 1 unless it is a sane page number (an offset a
    database cannot hold would fail the query)."""
    value = request.args.get("page", "1")
    if value.isascii() and value.isdigit() and len(value) <= 6 and int(value) > 0:
        return int(value)
    return 1


class _Protected:
    """The checks every admin view makes; mixed into Flask-Admin's view classes."""

    site: AdminSite

    if t.TYPE_CHECKING:
        # Provided by Flask-Admin's BaseView, which this is mixed into.
        def get_url(self, endpoint: str, **kwargs: t.Any) -> str: ...

    def is_accessible(self) -> bool:
        """Whether a signed-in user with the administer permission asks."""
        administrator = auth.current_administrator()
        return administrator is not None and administrator.permitted

    def inaccessible_callback(self, name: str, **kwargs: t.Any) -> Response:
        """Anonymous: to the sign-in page. Signed in without the permission: 403."""
        if auth.current_administrator() is None:
            target = None
            if request.method == "GET":
                target = request.full_path.rstrip("?")
            return self._sign_in_redirect(target)
        return self.page(
            403,
            "error.html",
            title="Not allowed",
            message="Your account may not administer JWT authentication.",
        )

    def _sign_in_redirect(self, target: str | None) -> Response:
        args = {"next": target} if target else {}
        endpoint = self.site.endpoint("account") + ".sign_in"
        return redirect(self.get_url(endpoint, **args))

    def _handle_view(self, name: str, **kwargs: t.Any) -> t.Any:
        try:
            return super()._handle_view(name, **kwargs)  # type: ignore[misc]
        except JWTAuthError as e:
            return self.error_page(e)

    def _run_view(
        self, fn: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any
    ) -> t.Any:
        try:
            return super()._run_view(fn, *args, **kwargs)  # type: ignore[misc]
        except JWTAuthError as e:
            return self.error_page(e)

    def create_blueprint(self, admin: Admin) -> Blueprint:
        """Flask-Admin's blueprint, with the admin's security headers."""
        blueprint: Blueprint = super().create_blueprint(admin)  # type: ignore[misc]
        blueprint.after_request(_security_headers)
        return blueprint

    def render(self, template: str, **kwargs: t.Any) -> str:
        """Render one of the extension's admin templates."""
        kwargs.setdefault("administrator", auth.current_administrator())
        kwargs.setdefault("sign_out_form", ActionForm())
        kwargs.setdefault(
            "sign_out_url",
            self.get_url(self.site.endpoint("account") + ".sign_out"),
        )
        kwargs.setdefault("when", when)
        page = super().render(TEMPLATES + template, **kwargs)  # type: ignore[misc]
        return t.cast(str, page)

    def page(
        self,
        status: int,
        template: str,
        headers: t.Mapping[str, str] | None = None,
        **kwargs: t.Any,
    ) -> Response:
        """A rendered page with ``status``."""
        response = make_response(self.render(template, **kwargs), status)
        response.headers.update(headers or {})
        return response

    def error_page(self, error: JWTAuthError) -> Response:
        """An HTML page for one of the extension's errors (429, 503), with its
        headers (``Retry-After``)."""
        headers = {
            k: v
            for k, v in error.extra_headers.items()
            if k not in ("Content-Type", "Cache-Control")
        }
        return self.page(
            error.code or 500,
            "error.html",
            headers=headers,
            title=error.name,
            message=error.description,
        )

    def csrf_refused(self) -> Response:
        """A POST whose form did not validate: refused, nothing changed."""
        return self.page(
            400,
            "error.html",
            title="Bad request",
            message="The form has expired or did not come from this page; reload"
            " the page and try again.",
        )

    def back(self, **args: t.Any) -> Response:
        """Post/redirect/get: back to the view's page."""
        args = {k: v for k, v in args.items() if v}
        return redirect(self.get_url(".index", **args), code=303)


class AdminView(_Protected, BaseView):  # type: ignore[misc]
    """Base class of the extension's admin pages."""

    def __init__(self, site: AdminSite, **kwargs: t.Any) -> None:
        self.site = site
        super().__init__(**kwargs)


class OverviewView(_Protected, AdminIndexView):  # type: ignore[misc]
    """The home page of an admin made by :func:`init_admin`: the key and the
    main settings in force."""

    def __init__(self, site: AdminSite | None = None, **kwargs: t.Any) -> None:
        if site is not None:
            self.site = site
        super().__init__(**kwargs)

    @expose("/")
    def index(self) -> Response:
        state = get_state()
        return self.page(
            200,
            "overview.html",
            settings=state.settings,
            current_key=_current_key(state),
        )


def _current_key(state: AppState) -> t.Any:
    """The key that signs now, or ``None`` when there is none."""
    try:
        return state.keyset.current
    except TemporarilyUnavailable:
        return None
