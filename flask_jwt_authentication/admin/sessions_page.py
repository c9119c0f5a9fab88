"""The admin's Sessions and Revoked tokens pages: list, search by user, revoke
one session or all of a user, the password-reset action."""

from __future__ import annotations

import dataclasses
import json
import time
import typing as t
import uuid

from flask import flash
from flask import request
from werkzeug.wrappers import Response

from .. import listing
from ..state import AppState
from ..state import get_state
from .forms import SessionForm
from .forms import UserSessionsForm

if t.TYPE_CHECKING:
    pass

from .base import _IDENTITY_NUMBER
from .base import PAGE_SIZE
from .base import REVOKED_BY_ADMIN
from .base import AdminView
from .base import _page_number
from .base import expose


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
            total = listing.count_session_records(store, user_keys=user_keys, now=now)
            records = listing.session_records(
                store,
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
            total = listing.count_revoked_tokens(store)
            rows = listing.revoked_token_records(
                store, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
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
