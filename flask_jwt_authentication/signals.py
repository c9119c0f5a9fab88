"""Blinker signals sent by the extension, each with the application as sender.

Connect a receiver with ``signals.jwt_created.connect(func, app)`` (or without the
app to hear every app). Receivers run synchronously in the request.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent before an access token is signed. Sender: the app. Arguments: ``payload``
#: (the claims about to be signed; add claims to it, reserved ones are protected)
#: and ``user``.
jwt_created = _signals.signal("jwt-created")

#: Sent after an access token is signed, for audit. Sender: the app. Arguments:
#: ``token`` (the compact JWS) and ``payload`` (its claims).
jwt_encoded = _signals.signal("jwt-encoded")

#: Sent after an access token is verified and found not revoked. Sender: the app.
#: Arguments: ``payload`` and ``token``. Raise
#: :class:`~flask_jwt_authentication.TokenRejected` to refuse the token.
jwt_decoded = _signals.signal("jwt-decoded")

#: Sent when a log-in fails, for monitoring. Sender: the app. Arguments:
#: ``username`` (as the user lookup received it), ``address`` (the client address)
#: and ``reason``: ``"unknown_user"``, ``"wrong_password"``, ``"disabled_user"``,
#: ``"unusable_hash"`` or ``"too_many_attempts"``.
login_failed = _signals.signal("login-failed")

#: Sent after a refresh issued a new pair (after ``jwt_created`` and
#: ``jwt_encoded``). Sender: the app. Arguments: ``user``, ``session_id`` (the
#: login session, a string) and ``payload`` (the new access token's claims).
token_refreshed = _signals.signal("token-refreshed")

#: Sent after a log-out revoked an access token and its session. Sender: the app.
#: Arguments: ``user`` and ``payload`` (the revoked token's claims).
logged_out = _signals.signal("logged-out")

#: Sent when a consumed refresh token is presented again and its whole login
#: session is revoked: a stolen token, or a client that lost a race. The one to
#: alert on. Sender: the app. Arguments: ``session_id`` (a string), ``identity``
#: (the user's identity) and ``address`` (the client address).
refresh_token_reused = _signals.signal("refresh-token-reused")

#: Sent after a successful log-in whose stored hash had another method or older
#: parameters than the current ones. Sender: the app. Arguments: ``user`` and
#: ``password_hash`` (the password hashed with the current ones): store it as the
#: user's hash. Sent before the tokens are issued, in the log-in's request.
password_rehashed = _signals.signal("password-rehashed")

#: Sent when the RFC 8414 metadata document is built. Sender: the app.
#: Arguments: ``metadata`` (the dict about to be served; receivers may add
#: members, such as ``dpop_signing_alg_values_supported``).
server_metadata_created = _signals.signal("server-metadata-created")

#: Sent after :meth:`~flask_jwt_authentication.JWTAuthentication.password_changed`
#: refused the user's earlier tokens. Sender: the app. Arguments: ``user``,
#: ``not_before`` (seconds since the epoch) and ``sessions_revoked`` (a count).
password_changed = _signals.signal("password-changed")
