"""The :class:`JWTAuthentication` extension object."""

from __future__ import annotations

import functools
import json
import logging
import time
import typing as t
import uuid

from flask import Flask
from flask import current_app

from . import config
from . import revocation
from . import revocation_feed
from . import signals
from .callbacks import _REQUIRED_CALLBACKS
from .callbacks import PermissionChecker
from .callbacks import RolesLoader
from .callbacks import UserIdentity
from .callbacks import UserLoader
from .callbacks import UserLookup
from .callbacks import UsernameNormalizer
from .callbacks import _default_identity
from .callbacks import _missing_user_loader
from .callbacks import _missing_user_lookup
from .callbacks import _no_roles
from .callbacks import _not_registered
from .callbacks import default_permission_checker
from .dpop_state import load_dpop_state
from .keyring import KeyRing
from .keys import configured_keys
from .keys import keys_for
from .keystore import KeyStore
from .limits import FloodControl
from .limits import normalize_username
from .models import build_tables
from .notbefore import set_not_before
from .overrides import SettingsStore
from .passwords import DummyHash
from .passwords import NeedsRehash
from .passwords import Outcome
from .passwords import PasswordHasher
from .passwords import PasswordVerifier
from .passwords import check_credentials
from .passwords import werkzeug_method
from .passwords import werkzeug_needs_rehash
from .passwords import werkzeug_verifier
from .settings_registry import read
from .state import EXTENSION_KEY
from .state import AppState
from .state import get_state
from .store import SessionInfo
from .store import Store

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

logger = logging.getLogger("flask_jwt_authentication")

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


class JWTAuthentication:
    """JWT log-in for a Flask API: the token endpoints, ``@jwt_required`` and the
    ``flask jwt`` commands.

    :param app: an application to initialise at once; or call :meth:`init_app`.
    :param db: the application's Flask-SQLAlchemy object; the extension's tables are
        defined on its metadata.

    One object may serve several applications; each gets its own settings, keys and
    store under ``app.extensions["jwt_authentication"]``.

    .. versionadded:: 0.1
    """

    def __init__(
        self, app: Flask | None = None, *, db: SQLAlchemy | None = None
    ) -> None:
        self._user_lookup: UserLookup = _missing_user_lookup
        self._user_loader: UserLoader = _missing_user_loader
        self._user_identity: UserIdentity = _default_identity
        self._permission_checker: PermissionChecker = default_permission_checker
        self._username_normalizer: UsernameNormalizer = normalize_username
        self._roles_loader: RolesLoader = _no_roles
        self._password_verifier: PasswordVerifier = werkzeug_verifier
        self._password_hasher: PasswordHasher | None = self._werkzeug_hash
        self._needs_rehash: NeedsRehash | None = werkzeug_needs_rehash
        self._dummy_hash = DummyHash()
        if app is not None:
            self.init_app(app, db=db)

    def init_app(self, app: Flask, *, db: SQLAlchemy | None = None) -> None:
        """Validate the configuration, define the tables and register the endpoints
        and the ``flask jwt`` command group on ``app``.

        Creates no table: use ``db.create_all()`` or Flask-Migrate. With
        ``JWT_AUTH_JWKS_URL`` set, the app only verifies the tokens of another
        (see :doc:`resource-server`): no database, no tables, no endpoints.

        :param app: the application.
        :param db: its Flask-SQLAlchemy object; by default the one registered on
            the app. Not used in verify-only mode.
        :raises ConfigurationError: a ``JWT_AUTH_*`` setting or a key is invalid.
        :raises RuntimeError: the app is already initialised, or has no database.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "JWTAuthentication is already initialised on this application."
            )
        for key, closest in config.misspelt_keys(app.config).items():
            hint = f"; did you mean {closest}?" if closest else "."
            logger.warning("%s is not a setting and is ignored%s", key, hint)
        if app.config.get("JWT_AUTH_JWKS_URL"):
            from .remote import load_state

            app.extensions[EXTENSION_KEY] = load_state(self, app)
            return
        if db is None:
            db = app.extensions.get("sqlalchemy")
            if db is None:
                raise RuntimeError(
                    "JWTAuthentication needs the app's Flask-SQLAlchemy object:"
                    " call init_app(app, db=db) after db.init_app(app)."
                )
        settings = config.load_settings(app.config, app.name)
        encryption = read(app.config, "JWT_AUTH_KEY_ENCRYPTION_KEY")
        configured = configured_keys(app.config, settings.algorithm, encryption)
        tables = build_tables(db.metadata)
        ring = KeyRing(
            configured,
            KeyStore(db, tables.keys, encryption),
            settings.algorithm,
            settings.keys_refresh_interval,
        )
        flood = FloodControl(app.config)
        push = revocation.load_push_settings(app.config)
        store = Store(db, tables)
        app.extensions[EXTENSION_KEY] = state = AppState(
            extension=self,
            db=db,
            keys=ring,
            tables=tables,
            store=store,
            flood=flood,
            overrides=SettingsStore(
                db=db,
                table=tables.settings,
                app_config=app.config,
                app_name=app.name,
                keys=ring,
                flood=flood,
                configured_keys=functools.partial(keys_for, app.config, encryption),
            ),
            dpop=load_dpop_state(app, store),
        )
        # Reloads happen before a request takes a database connection, never
        # in the middle of one (see KeyRing.refresh); settings first, since a
        # change of algorithm switches the key ring. In push mode the follower
        # thread does them.
        revocation_feed.set_up(app, state, push, settings.access_token_ttl)
        from .cli import jwt_cli
        from .standards import standard_routes
        from .views import make_blueprint

        app.register_blueprint(
            make_blueprint(settings, standard_routes(settings, app.config))
        )
        app.cli.add_command(jwt_cli)
        # Made now, not inside the first log-in: that attempt would cost two
        # hashes and tell itself apart.
        self._dummy_hash.get()

    # Callbacks ------------------------------------------------------------------------

    def missing_callbacks(self) -> list[str]:
        """The decorators the application has not applied yet of those the
        endpoints need (``user_lookup``, ``user_loader``)."""
        return [
            decorator
            for decorator, (attribute, default, _) in _REQUIRED_CALLBACKS.items()
            if getattr(self, attribute) is default
        ]

    def require_callbacks(self) -> None:
        """Refuse to serve while a required callback is missing, naming it in the
        log: a token must never be issued that no protected route can accept.

        The endpoints call it on every request: the decorators are often applied
        after :meth:`init_app`, so a request is the earliest moment to check.

        :raises ServerMisconfigured: a callback is missing (500 ``server_error``).
        """
        errors = [
            _not_registered(decorator, _REQUIRED_CALLBACKS[decorator][2])
            for decorator in self.missing_callbacks()
        ]
        if errors:
            raise errors[0]

    def user_lookup(self, func: F) -> F:
        """Register the function that finds the user logging in.

        It takes the normalised username (see :meth:`username_normalizer`) and
        returns the user object, or ``None`` if there is no such user. The user
        object carries the password hash (see ``JWT_AUTH_PASSWORD_HASH_ATTRIBUTE``)
        and, optionally, ``is_active``.
        """
        self._user_lookup = func
        return func

    def username_normalizer(self, func: F) -> F:
        """Register the function that normalises a username before the lookup.

        It takes the username as sent and returns the form passed to
        :meth:`user_lookup`; the per-username flood counter uses the same form,
        case-folded. The default applies Unicode NFKC and strips surrounding spaces.
        """
        self._username_normalizer = func
        return func

    def user_loader(self, func: F) -> F:
        """Register the function that loads the user of a verified token.

        It takes the identity (the token's ``uid``) and returns the user object, or
        ``None`` if the user no longer exists (the token is then refused).
        """
        self._user_loader = func
        return func

    def user_identity(self, func: F) -> F:
        """Register the function that gives a user's identity for new tokens.

        It takes the user object and returns a string or an integer; the default
        returns ``user.id``.
        """
        self._user_identity = func
        return func

    def roles_loader(self, func: F) -> F:
        """Register the function that gives a user's roles for new tokens.

        It takes the user object and returns role names (strings), written into
        every access token as the ``roles`` claim (see ``JWT_AUTH_ROLES_CLAIM``),
        so that ``@jwt_required(roles="editor")`` can check them without a
        database query and without a permission checker::

            @jwt.roles_loader
            def roles(user):
                return [role.name for role in user.roles]

        Roles are read when a token is issued: a change reaches a user's tokens
        at the next refresh.
        """
        self._roles_loader = func
        return func

    def permission_checker(self, func: F) -> F:
        """Register the function that grants permissions.

        It takes the user (or ``None`` for an anonymous caller) and a permission
        name and returns whether the user has it. The extension asks for
        ``"access jwt authentication"`` (obtain and refresh tokens),
        ``"use jwt authentication"`` (log out) and, for routes decorated with
        ``@jwt_required(permission=...)``, the name given there.
        :func:`default_permission_checker` describes the defaults.
        """
        self._permission_checker = func
        return func

    def password_verifier(
        self,
        func: F | None = None,
        *,
        dummy_hash: str | None = None,
        hasher: PasswordHasher | None = None,
        needs_rehash: NeedsRehash | None = None,
    ) -> t.Any:
        """Register the function that verifies a password against a stored hash.

        It takes ``(stored_hash, password)`` and returns a bool; it may raise
        ``ValueError`` for a hash it cannot read. With a scheme other than
        Werkzeug's, pass ``dummy_hash``: a hash made by that scheme, at the same
        cost, which failed log-ins verify against so they all cost the same::

            @jwt.password_verifier(dummy_hash=argon2.hash("dummy"))
            def verify(stored_hash, password): ...

        :param dummy_hash: a hash of the current method and parameters.
        :param hasher: ``(password) -> hash`` with the current parameters; with
            ``needs_rehash``, a successful log-in with an outdated hash sends
            :data:`~flask_jwt_authentication.signals.password_rehashed`.
        :param needs_rehash: ``(stored_hash, dummy_hash) -> bool``: whether a
            stored hash is outdated. Failed log-ins with one wait for the
            difference in cost. Without it no hash counts as outdated.

        .. versionchanged:: 0.1
            Added ``hasher`` and ``needs_rehash``.
        """

        def register(f: F) -> F:
            self._password_verifier = f
            self._password_hasher = hasher
            self._needs_rehash = needs_rehash
            if dummy_hash is not None:
                self._dummy_hash = DummyHash(dummy_hash)
            return f

        return register(func) if func is not None else register

    def _werkzeug_hash(self, password: str) -> str:
        """A Werkzeug hash with the dummy hash's method and parameters."""
        from werkzeug.security import generate_password_hash

        method = werkzeug_method(self._dummy_hash.get())
        return generate_password_hash(password, method=method)

    @property
    def dummy_password_hash(self) -> str:
        """The hash failed log-ins are verified against (made at ``init_app``).

        Its method and parameters are the current ones: with the default
        verifier, a user's hash of another method or parameters is outdated,
        and re-hashed with these at the user's next log-in. Set it to a hash of
        the method and cost your users' hashes should have.
        """
        return self._dummy_hash.get()

    @dummy_password_hash.setter
    def dummy_password_hash(self, value: str) -> None:
        self._dummy_hash = DummyHash(value)

    def has_permission(self, user: t.Any, permission: str) -> bool:
        """Ask the permission checker whether ``user`` has ``permission``."""
        return bool(self._permission_checker(user, permission))

    # Sessions, for the application and its administrators --------------------------

    def identity_of(self, user: t.Any) -> str | int:
        """The identity written into ``user``'s tokens (the ``uid`` claim).

        :raises TypeError: the identity callback returned neither a string nor an
            integer.
        """
        identity = self._user_identity(user)
        if isinstance(identity, bool) or not isinstance(identity, (str, int)):
            raise TypeError("The user identity must be a string or an integer.")
        return identity

    @property
    def has_user_loader(self) -> bool:
        """Whether a :meth:`user_loader` callback is registered.

        .. versionadded:: 0.1.0
        """
        return self._user_loader is not _missing_user_loader

    def load_user(self, identity: t.Any) -> t.Any:
        """The user of ``identity`` (a token's ``uid``), through the
        :meth:`user_loader` callback; ``None`` for no such user.

        .. versionadded:: 0.1.0
        """
        return self._user_loader(identity)

    def identity_key(self, user: t.Any) -> str:
        """``user``'s identity as sessions store it: JSON, so 7 and "7" stay
        distinct.

        .. versionadded:: 0.1.0
        """
        return json.dumps(self.identity_of(user))

    def find_user(self, username: str) -> t.Any:
        """The :meth:`user_lookup` callback's user for an already normalised
        ``username`` (see :meth:`normalize_username`), or ``None``.

        .. versionadded:: 0.1.0
        """
        return self._user_lookup(username)

    def normalize_username(self, username: str) -> str:
        """``username`` in the form the user lookup and the flood counters see
        (the :meth:`username_normalizer` callback).

        .. versionadded:: 0.1.0
        """
        return self._username_normalizer(username)

    def roles_of(self, user: t.Any) -> t.Iterable[str] | None:
        """``user``'s roles from the :meth:`roles_loader` callback, for the
        roles claim.

        .. versionadded:: 0.1.0
        """
        return self._roles_loader(user)

    def check_password(self, user: t.Any, password: str, *, attribute: str) -> Outcome:
        """Check ``password`` against ``user``'s stored hash the way a log-in
        does: one hash verification whatever the outcome (the dummy hash for a
        missing user or hash), padded to the current parameters' cost.

        .. versionadded:: 0.1.0
        """
        return check_credentials(
            user,
            password,
            attribute=attribute,
            verify=self._password_verifier,
            dummy=self._dummy_hash,
            needs_rehash=self._needs_rehash,
        )

    def hash_password(self, password: str) -> str | None:
        """``password`` hashed with the current method and parameters, or
        ``None`` without a hasher (see :meth:`password_verifier`).

        .. versionadded:: 0.1.0
        """
        return (
            None if self._password_hasher is None else self._password_hasher(password)
        )

    def sessions(self, user: t.Any) -> list[SessionInfo]:
        """The live login sessions of ``user``, most recently used first.

        Call it inside an application context; no permission is checked, so use it
        for the user itself or from an administrator's view.
        """
        store = get_state().store
        with store.unavailable_on_error():
            return store.user_sessions(self.identity_key(user), now=int(time.time()))

    def revoke_session(
        self, session_id: str | uuid.UUID, *, user: t.Any = None
    ) -> bool:
        """End one login session: its refresh tokens and access tokens stop working
        on their next use.

        :param session_id: the session's id (the ``sid`` claim).
        :param user: end it only if it belongs to this user.
        :returns: whether a live session was ended.
        """
        store = get_state().store
        key = None if user is None else self.identity_key(user)
        with store.unavailable_on_error():
            done = store.revoke_session(
                uuid.UUID(str(session_id)),
                now=int(time.time()),
                reason="revoked",
                user_key=key,
            )
            store.commit()
        return done

    def revoke_sessions(self, user: t.Any) -> int:
        """End every login session of ``user`` ("log out everywhere").

        Call it when disabling a user, changing its password, or on suspicion.

        :returns: how many sessions were ended.
        """
        store = get_state().store
        with store.unavailable_on_error():
            count = store.revoke_user_sessions(
                self.identity_key(user), now=int(time.time()), reason="revoked"
            )
            store.commit()
        return count

    def password_changed(self, user: t.Any) -> int:
        """Call when ``user``'s password changes or is reset: every token of the
        user issued before now stops working at once, on every worker.

        Stores a per-user "not before" that the check of every protected request
        reads, ends every login session of the user (so no refresh token issued
        before works either), and sends
        :data:`~flask_jwt_authentication.signals.password_changed`. Log in
        again for new tokens.

        :param user: the user whose password changed.
        :returns: how many sessions were ended.

        .. versionadded:: 0.1.0
        """
        store = get_state().store
        key = self.identity_key(user)
        now = int(time.time())
        with store.unavailable_on_error():
            set_not_before(store, key, now)
            count = store.revoke_user_sessions(key, now=now, reason="password changed")
            store.commit()
        signals.password_changed.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user=user,
            not_before=now,
            sessions_revoked=count,
        )
        return count
