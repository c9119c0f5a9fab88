"""Admin pages for the extension, on Flask-Admin (the ``admin`` extra:
``pip install flask_jwt_authentication[admin]``).

One call mounts them::

    from flask_jwt_authentication.admin import init_admin

    init_admin(app)                 # a ready admin at /jwt-admin
    init_admin(app, admin=admin)    # or in the app's own Flask-Admin

Only users with the ``administer jwt authentication`` permission get in; they sign
in on the admin's own sign-in page, with the same checks and flood limits as
``POST {prefix}/tokens``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint
from flask import Flask
from flask_admin import Admin  # type: ignore[import-untyped]

from ..settings_registry import read
from ..state import get_state
from .views import VIEWS
from .views import AdminSite
from .views import OverviewView

__all__ = ["ENDPOINT", "init_admin"]

#: The endpoint of the admin :func:`init_admin` makes; the views' endpoints
#: are ``jwt_admin_settings``, ``jwt_admin_keys``, ``jwt_admin_sessions``,
#: ``jwt_admin_revoked`` and ``jwt_admin_account`` (sign-in and sign-out).
ENDPOINT = "jwt_admin"

_TEMPLATES = "jwt_authentication_admin_templates"


def init_admin(
    app: Flask,
    admin: Admin | None = None,
    *,
    url: str = "/jwt-admin",
    name: str = "JWT authentication",
) -> Admin:
    """Mount the admin pages on ``app``: settings, keys, sessions, revoked tokens,
    and the sign-in page.

    :param app: an application the extension is initialised on, with a
        ``SECRET_KEY`` (it signs the admin's cookie and CSRF tokens).
    :param admin: the application's own Flask-Admin object: the pages join it
        under the menu category ``name``, at ``{admin.url}/jwt-authentication/...``.
        By default a new one is made at ``url``, with an overview as home page.
    :param url: where the new admin lives.
    :param name: the new admin's title, or the category in ``admin``.
    :returns: the Flask-Admin object holding the pages.
    :raises RuntimeError: the extension is not initialised on ``app`` or only
        verifies tokens there (``JWT_AUTH_JWKS_URL``), ``app`` has no
        ``SECRET_KEY``, or ``admin`` belongs to another application.
    :raises ConfigurationError: ``JWT_AUTH_ADMIN_SESSION_TTL`` or
        ``JWT_AUTH_ADMIN_COOKIE_SECURE`` is invalid.

    .. versionadded:: 0.1
    """
    get_state(app)
    if not app.secret_key:
        raise RuntimeError(
            "The admin pages need the app's SECRET_KEY: it signs their cookie and"
            " CSRF tokens."
        )
    if admin is not None and admin.app is not None and admin.app is not app:
        raise RuntimeError("This Admin belongs to another application.")
    lifetime: int = read(app.config, "JWT_AUTH_ADMIN_SESSION_TTL")
    read(app.config, "JWT_AUTH_ADMIN_COOKIE_SECURE")  # named at start-up
    _register_templates(app)
    prefix, category = "", None
    if admin is None:
        home = OverviewView(name="Overview", endpoint=ENDPOINT, url=url)
        admin = Admin(app, name=name, url=url, endpoint=ENDPOINT, index_view=home)
        site = AdminSite(admin, lifetime, ENDPOINT, f"{ENDPOINT}.index")
        home.site = site
    else:
        site = AdminSite(admin, lifetime, ENDPOINT, f"{ENDPOINT}_settings.index")
        prefix, category = "jwt-authentication/", name
    for view_class, title, endpoint, path in VIEWS:
        admin.add_view(
            view_class(
                site,
                name=title,
                endpoint=site.endpoint(endpoint),
                url=prefix + path,
                category=category,
            )
        )
    return admin


def _register_templates(app: Flask) -> None:
    """Make the pages' templates findable; an application overrides one by
    placing its own at the same path (``jwt_authentication/admin/...``) in its
    templates folder."""
    if _TEMPLATES not in app.blueprints:
        folder = Path(__file__).resolve().parent.parent / "templates"
        app.register_blueprint(Blueprint(_TEMPLATES, __name__, template_folder=folder))
