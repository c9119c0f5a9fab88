"""The admin pages: Flask-Admin views over the extension's settings, keys,
sessions and revoked tokens, and the sign-in page.

Every page and every action checks the signed-in user itself (``is_accessible``
runs before each view method, POST handlers included): anonymous visitors are
sent to the sign-in page, users without ``administer jwt authentication`` get 403.
Every change is a POST carrying a CSRF token; no GET changes anything.
"""

from __future__ import annotations

import typing as t

from flask import flash
from flask import redirect
from flask import request
from flask import session
from werkzeug.wrappers import Response
from wtforms import SelectChoice  # type: ignore[import-untyped]

from ..errors import ConfigurationError
from ..errors import InvalidGrant
from ..errors import InvalidRequest
from ..keys import ALGORITHMS
from ..login import check_login
from ..state import ADMINISTER_PERMISSION
from ..state import AppState
from ..state import get_state
from . import auth
from .forms import ActionForm
from .forms import SettingsForm
from .forms import SignInForm

if t.TYPE_CHECKING:
    pass

from .base import AdminSite
from .base import AdminView
from .base import OverviewView
from .base import _current_key
from .base import expose
from .keys_page import KeysView
from .sessions_page import RevokedTokensView
from .sessions_page import SessionsView


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
