"""The admin pages: Flask-Admin views over the extension's settings, keys,
sessions and revoked tokens, and the sign-in page.

Every page and every action checks the signed-in user itself (``is_accessible``
runs before each view method, POST handlers included): anonymous visitors are
sent to the sign-in page, users without ``administer jwt authentication`` get 403.
Every change is a POST carrying a CSRF token; no GET changes anything.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import time
import typing as t
import uuid
from urllib.parse import urlsplit

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import make_response
from flask import redirect
from flask import request
from flask import session
from flask_admin import AdminIndexView  # type: ignore[import-untyped]
from flask_admin import BaseView
from flask_admin import expose as _flask_admin_expose
from werkzeug.wrappers import Response
from wtforms import SelectChoice  # type: ignore[import-untyped]

from ..errors import ConfigurationError
from ..errors import InvalidGrant
from ..errors import InvalidRequest
from ..errors import JWTAuthError
from ..errors import TemporarilyUnavailable
from ..introspection import client_listing
from ..keys import ALGORITHMS
from ..keystore import CURRENT
from ..keystore import NEXT
from ..keystore import RETIRED
from ..keystore import RETIRING
from ..keystore import retire_after
from ..login import check_login
from ..state import ADMINISTER_PERMISSION
from ..state import AppState
from ..state import get_state
from . import auth
from .forms import ActionForm
from .forms import KeyAlgorithmForm
from .forms import KeyForm
from .forms import SessionForm
from .forms import SettingsForm
from .forms import SignInForm
from .forms import UserSessionsForm

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


class AccountView(AdminView):
    """The sign-in and sign-out pages: open to everyone, not in the menu."""

    def is_visible(self) -> bool:
        return False

    def is_accessible(self) -> bool:
        return True

    @expose("/")
    def index(self) -> Response:
        return redirect(self.get_url(".sign_in"))

    @expose("/sign-in", methods=("GET", "POST"))
    def sign_in(self) -> Response:
        """Check the username and password exactly as ``POST {prefix}/tokens``
        does (flood limits, timing guard), then start an admin session."""
        if request.method == "GET":
            form = SignInForm(next=self.site.safe_next(request.args.get("next")))
            return self.page(200, "sign_in.html", form=form)
        form = SignInForm(request.form)
        if not form.validate():
            # Malformed input is not an attempt, as in the API: not counted.
            return self.page(400, "sign_in.html", form=form)
        state = get_state()
        try:
            user = check_login(state, form.username.data, form.password.data)
        except (InvalidGrant, InvalidRequest) as e:
            # A wrong password is an answer, not an error of the form: 200.
            form.form_errors.append(e.description)
            status = 400 if isinstance(e, InvalidRequest) else 200
            return self.page(status, "sign_in.html", form=form)
        if not state.extension.has_permission(user, ADMINISTER_PERMISSION):
            return self.page(
                403,
                "error.html",
                title="Not allowed",
                message="Your account may not administer JWT authentication.",
            )
        cookie = auth.start_admin_session(user, self.site.session_lifetime)
        # A new session in the browser: nothing set before the sign-in (a CSRF
        # secret planted by someone else) carries over.
        session.clear()
        target = self.site.safe_next(form.next.data) or self.get_url(self.site.home)
        response = redirect(target, code=303)
        auth.set_admin_cookie(
            response, cookie, path=self.site.url, max_age=self.site.session_lifetime
        )
        return response

    @expose("/sign-out", methods=("POST",))
    def sign_out(self) -> Response:
        """End the admin session and forget the cookie."""
        if not ActionForm(request.form).validate():
            return self.csrf_refused()
        auth.end_admin_session()
        session.clear()
        flash("You are signed out.", "info")
        response = redirect(self.get_url(".sign_in"), code=303)
        auth.set_admin_cookie(response, None, path=self.site.url)
        return response


class SettingsView(AdminView):
    """The settings editable at run time, over the configuration's defaults."""

    @expose("/")
    def index(self) -> Response:
        state = get_state()
        stored = _stored_settings(state)
        form = SettingsForm(data=_form_data(stored))
        return self._settings_page(200, state, form, stored)

    @expose("/", methods=("POST",))
    def save(self) -> Response:
        state = get_state()
        form = SettingsForm(request.form)
        stored = _stored_settings(state)
        if not form.validate():
            if form.csrf_token.errors:
                return self.csrf_refused()
            return self._settings_page(400, state, form, stored)
        changes: dict[str, t.Any] = {}
        for field, name in SettingsForm.FIELDS.items():
            value = form.value_of(field)
            if value != stored.get(name):
                changes[name] = value
        if not changes:
            flash("Nothing changed.", "info")
            return self.back()
        try:
            state.overrides.save(changes)
        except ConfigurationError as e:
            # The settings layer names the setting at fault: show it there.
            at = _field_named(getattr(e, "name", None))
            if at is None:
                form.form_errors.append(str(e))
            else:
                form[at].errors = [*form[at].errors, str(e)]
            return self._settings_page(400, state, form, stored)
        interval = state.settings.keys_refresh_interval
        flash(
            "Settings saved: " + ", ".join(sorted(changes)) + f". Every worker uses"
            f" them within {interval} s.",
            "success",
        )
        return self.back()

    def _settings_page(
        self, status: int, state: AppState, form: SettingsForm, stored: dict[str, t.Any]
    ) -> Response:
        defaults = state.overrides.defaults()
        algorithm = _shown(defaults.get("JWT_AUTH_ALGORITHM"))
        form.algorithm.choices = [
            SelectChoice("", f"(default: {algorithm})"),
            *map(SelectChoice, ALGORITHMS),
        ]
        rows = [
            {
                "field": form[field],
                "name": name,
                "default": _shown(defaults.get(name)),
                "overridden": name in stored,
            }
            for field, name in SettingsForm.FIELDS.items()
        ]
        return self.page(
            status,
            "settings.html",
            form=form,
            rows=rows,
            settings=state.settings,
            current_key=_current_key(state),
            keys_url=self.get_url(self.site.endpoint("keys") + ".index"),
        )


def _stored_settings(state: AppState) -> dict[str, t.Any]:
    with state.store.unavailable_on_error():
        return state.overrides.stored()


def _form_data(stored: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    data = {}
    for field, name in SettingsForm.FIELDS.items():
        value = stored.get(name)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        data[field] = "" if value is None and field == "algorithm" else value
    return data


def _field_named(name: str | None) -> str | None:
    for field, setting in SettingsForm.FIELDS.items():
        if setting == name:
            return field
    return None


def _shown(value: t.Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


class KeysView(AdminView):
    """The signing keys: list, generate, rotate, retire. Public parts only."""

    @expose("/")
    def index(self) -> Response:
        state = get_state()
        store = state.keys.store
        with state.store.unavailable_on_error():
            rows = store.all_keys()
        configured = state.keys.configured
        return self.page(
            200,
            "keys.html",
            rows=[
                (row, _public_jwk(row.public_jwk))
                for row in rows
                if configured is None or row.kid != configured.current.kid
            ],
            configured=configured.current if configured is not None else None,
            configured_jwk=(
                _public_jwk(configured.current.public_jwk)
                if configured is not None
                else None
            ),
            settings=state.settings,
            current_key=_current_key(state),
            key_algorithm_form=KeyAlgorithmForm(algorithm=state.settings.algorithm),
            key_form=KeyForm,
            retirable=(NEXT, CURRENT, RETIRING),
            configured_retired=(
                configured is not None
                and any(
                    row.kid == configured.current.kid and row.state == RETIRED
                    for row in rows
                )
            ),
            introspection_clients=client_listing(current_app.config),
        )

    @expose("/generate", methods=("POST",))
    def generate(self) -> Response:
        form = KeyAlgorithmForm(request.form)
        if not form.validate():
            return self.csrf_refused()
        state = get_state()
        algorithm = form.algorithm.data
        try:
            with state.store.unavailable_on_error():
                key = state.keys.store.generate(algorithm, state=NEXT)
        except ConfigurationError as e:
            flash(f"No key was generated: {e}", "error")
            return self.back()
        state.keys.invalidate()
        message = f"Generated {algorithm} key {key.kid} (next)."
        if algorithm != state.settings.algorithm:
            message += (
                f" It is used only while the algorithm is {algorithm};"
                f" it is {state.settings.algorithm} now."
            )
        flash(message, "success")
        return self.back()

    @expose("/rotate", methods=("POST",))
    def rotate(self) -> Response:
        """Make the oldest next key of the chosen algorithm current, as ``flask jwt
        keys rotate`` does. For another algorithm than the one in force, this
        prepares a switch: the key signs once Settings select its algorithm."""
        form = KeyAlgorithmForm(request.form)
        if not form.validate():
            return self.csrf_refused()
        state = get_state()
        algorithm = form.algorithm.data
        until = retire_after(state.settings)
        try:
            with state.store.unavailable_on_error():
                current, previous = state.keys.store.rotate(
                    algorithm, retire_after=until
                )
        except ConfigurationError as e:
            flash(f"No rotation: {e}", "error")
            return self.back()
        state.keys.invalidate()
        if algorithm == state.settings.algorithm:
            message = f"Key {current} now signs."
        else:
            message = (
                f"Key {current} is the current {algorithm} key; it signs once the"
                f" algorithm is {algorithm} (Settings)."
            )
        if previous is not None:
            message += f" Key {previous} verifies until {when(until)}."
        flash(message, "success")
        return self.back()

    @expose("/retire", methods=("POST",))
    def retire(self) -> Response:
        """Retire any key at once, as ``flask jwt keys retire`` does."""
        form = KeyForm(request.form)
        if not form.validate():
            return self.csrf_refused()
        state = get_state()
        kid = form.kid.data
        try:
            with state.store.unavailable_on_error():
                done = state.keys.retire(kid)
        except ConfigurationError as e:
            flash(f"Key {kid} was not retired: {e}", "error")
            return self.back()
        if done is None:
            flash(f"No key {kid}, or it is retired already.", "error")
            return self.back()
        message = f"Retired key {kid}: it no longer signs or verifies."
        if done.replaced_by is not None:
            message += f" Key {done.replaced_by} now signs."
        flash(message, "success")
        return self.back()

    @expose("/unretire", methods=("POST",))
    def unretire(self) -> Response:
        """Undo the retirement of the configured key."""
        form = KeyForm(request.form)
        if not form.validate():
            return self.csrf_refused()
        state = get_state()
        kid = form.kid.data
        with state.store.unavailable_on_error():
            done = state.keys.unretire(kid)
        if not done:
            flash(f"Key {kid} is not a retired configured key.", "error")
            return self.back()
        flash(f"Configured key {kid} verifies again.", "success")
        return self.back()


def _public_jwk(jwk: t.Mapping[str, t.Any] | None) -> str | None:
    """The JWK as indented JSON, without any private member whatever happens."""
    if not jwk:
        return None
    public = {k: v for k, v in jwk.items() if k not in _PRIVATE_JWK_MEMBERS}
    return json.dumps(public, indent=2, sort_keys=True)


@dataclasses.dataclass(frozen=True)
class _SessionRow:
    record: t.Any
    identity: t.Any
    username: str | None


class SessionsView(AdminView):
    """Login sessions, by user: list, revoke one, revoke all of a user."""

    @expose("/")
    def index(self) -> Response:
        state = get_state()
        query = request.args.get("q", "").strip()
        page = _page_number()
        error = _search_error(query)
        user_keys, found = (None, None) if not query or error else _search(state, query)
        now = int(time.time())
        store = state.store
        with store.unavailable_on_error():
            total = store.count_session_records(user_keys=user_keys, now=now)
            records = store.session_records(
                user_keys=user_keys,
                now=now,
                limit=PAGE_SIZE,
                offset=(page - 1) * PAGE_SIZE,
            )
            rows = _with_users(state, records)
        return self.page(
            400 if error else 200,
            "sessions.html",
            query=query,
            error=error,
            found=found,
            found_key=None
            if found is None
            else json.dumps(state.extension.identity_of(found)),
            rows=rows,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            total=total,
            session_form=SessionForm,
            user_form=UserSessionsForm,
        )

    @expose("/revoke", methods=("POST",))
    def revoke(self) -> Response:
        form = SessionForm(request.form)
        if not form.validate():
            return self.csrf_refused()
        try:
            session_id = uuid.UUID(form.session_id.data)
        except ValueError:
            return self.csrf_refused()
        store = get_state().store
        with store.unavailable_on_error():
            done = store.revoke_session(
                session_id, now=int(time.time()), reason=REVOKED_BY_ADMIN
            )
            store.commit()
        if done:
            flash(f"Session {session_id} ended.", "success")
        else:
            flash(f"Session {session_id} had ended already.", "info")
        return self.back(q=form.q.data)

    @expose("/revoke-user", methods=("POST",))
    def revoke_user(self) -> Response:
        form = UserSessionsForm(request.form)
        if not form.validate() or not _is_user_key(form.user_key.data):
            return self.csrf_refused()
        store = get_state().store
        with store.unavailable_on_error():
            count = store.revoke_user_sessions(
                form.user_key.data, now=int(time.time()), reason=REVOKED_BY_ADMIN
            )
            store.commit()
        identity = json.loads(form.user_key.data)
        flash(f"Ended {count} session(s) of user {identity}.", "success")
        return self.back(q=form.q.data)

    @expose("/password-changed", methods=("POST",))
    def password_changed(self) -> Response:
        """After a password reset done elsewhere: every token of the user issued
        before now stops working, its sessions end (``jwt.password_changed``)."""
        form = UserSessionsForm(request.form)
        if not form.validate() or not _is_user_key(form.user_key.data):
            return self.csrf_refused()
        state = get_state()
        identity = json.loads(form.user_key.data)
        with state.store.unavailable_on_error():
            user = state.extension.load_user(identity)
        if user is None:
            flash(f"No user {identity}: its tokens are refused already.", "info")
            return self.back(q=form.q.data)
        count = state.extension.password_changed(user)
        flash(
            f"Every token of user {identity} issued before now is refused;"
            f" {count} session(s) ended.",
            "success",
        )
        return self.back(q=form.q.data)


def _search_error(query: str) -> str | None:
    if len(query) > 255:
        return "The search is longer than 255 characters."
    if "\x00" in query or any("\ud800" <= c <= "\udfff" for c in query):
        return "The search contains characters that are not allowed."
    return None


def _search(state: AppState, query: str) -> tuple[list[str], t.Any]:
    """The stored identities a search may mean: the user of that username, and
    the identity itself (as a string, and as a number when it is one).

    :returns: the identities and the user found by username, if any.
    """
    ext = state.extension
    keys = [json.dumps(query)]
    if _IDENTITY_NUMBER.fullmatch(query):
        keys.append(json.dumps(int(query)))
    username = ext.normalize_username(query)
    user = None
    if username:
        with state.store.unavailable_on_error():
            user = ext.find_user(username)
    if user is not None:
        keys.insert(0, json.dumps(ext.identity_of(user)))
    return keys, user


def _with_users(state: AppState, records: t.Iterable[t.Any]) -> list[_SessionRow]:
    """The records with their users' names, one user lookup per user."""
    names: dict[str, str | None] = {}
    rows = []
    for record in records:
        identity = json.loads(record.user_key)
        if record.user_key not in names:
            user = state.extension.load_user(identity)
            username = getattr(user, "username", None)
            names[record.user_key] = username if isinstance(username, str) else None
        rows.append(_SessionRow(record, identity, names[record.user_key]))
    return rows


def _is_user_key(value: str) -> bool:
    """Whether ``value`` is an identity as sessions store it (JSON string or
    integer)."""
    try:
        identity = json.loads(value)
    except ValueError:
        return False
    if isinstance(identity, str):
        return not any("\ud800" <= c <= "\udfff" for c in identity)
    return isinstance(identity, int) and not isinstance(identity, bool)


class RevokedTokensView(AdminView):
    """Revoked access-token ids, kept until the tokens expire: read-only."""

    @expose("/")
    def index(self) -> Response:
        store = get_state().store
        page = _page_number()
        with store.unavailable_on_error():
            total = store.count_revoked_tokens()
            rows = store.revoked_token_records(
                limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
            )
        return self.page(
            200,
            "revoked.html",
            rows=rows,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            total=total,
            now=int(time.time()),
        )


#: The views of a mount, in menu order: (class, name, endpoint suffix, url).
VIEWS: tuple[tuple[type[AdminView], str, str, str], ...] = (
    (SettingsView, "Settings", "settings", "settings"),
    (KeysView, "Keys", "keys", "keys"),
    (SessionsView, "Sessions", "sessions", "sessions"),
    (RevokedTokensView, "Revoked tokens", "revoked", "revoked-tokens"),
    (AccountView, "Sign in", "account", "account"),
)

__all__ = [
    "AccountView",
    "AdminSite",
    "AdminView",
    "KeysView",
    "OverviewView",
    "RevokedTokensView",
    "SessionsView",
    "SettingsView",
]
