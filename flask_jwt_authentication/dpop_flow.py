"""DPoP (RFC 9449) at the edge: the proof a token request or a protected
request carries, its replay check, and the challenges of a 401.

``JWT_AUTH_DPOP = "allowed"``: a log-in with a ``DPoP`` proof binds its session
to the proof's key (tokens with ``cnf.jkt``, ``token_type: "DPoP"``); others get
Bearer tokens. ``"required"``: every log-in needs a proof and protected routes
take DPoP-bound tokens only. A bound token works only as ``Authorization: DPoP``
with a fresh proof signed by the same key; a refresh of a bound session needs a
proof by that key too.
"""

from __future__ import annotations

import time
import typing as t

from flask import Response
from flask import after_this_request
from flask import g
from flask import request

from . import dpop
from .errors import DPoPNonceRequired
from .errors import DPoPProofRefused
from .errors import InvalidDPoPProof
from .errors import InvalidToken
from .errors import UseDPoPNonce
from .errors import _quote

if t.TYPE_CHECKING:
    from .config import Settings
    from .state import AppState
    from .state import VerifyOnlyState

#: Where ``g`` notes that this answer carries the nonce already.
_OFFERED = "_jwt_auth_dpop_nonce_offered"
#: Seconds a proof's ``iat`` may be from the server's clock (plus the leeway).
PROOF_WINDOW = 60


def _offer_nonce(state: AppState | VerifyOnlyState) -> None:
    """With nonces on, the answer to this request carries the nonce to use
    next (``DPoP-Nonce``), whatever it is."""
    nonces = state.dpop.nonces
    if nonces is None or g.get(_OFFERED):
        return
    setattr(g, _OFFERED, True)
    nonce = nonces.current(time.time())

    @after_this_request
    def offer_nonce(response: Response) -> Response:
        response.headers["DPoP-Nonce"] = nonce
        return response


def _proof_header(state: AppState | VerifyOnlyState) -> str | None:
    _offer_nonce(state)
    values = request.headers.getlist("DPoP")
    if len(values) > 1:
        raise InvalidDPoPProof("Send one DPoP proof, not several.")
    return values[0] if values else None


def _refuse_nonce(
    nonce: object, error: type[InvalidDPoPProof] | type[DPoPProofRefused]
) -> t.NoReturn:
    missing = UseDPoPNonce if error is InvalidDPoPProof else DPoPNonceRequired
    raise missing(
        "Sign the DPoP proof with the nonce of the DPoP-Nonce header."
        if nonce is None
        else "The DPoP proof's nonce is not current: use the DPoP-Nonce header's."
    )


def ask_for_the_nonce_first(state: AppState) -> None:
    """At a token endpoint, before the password or refresh token is looked at:
    with nonces on, every answer carries ``DPoP-Nonce``, and a proof whose
    nonce is missing or old gets ``use_dpop_nonce`` at once (the client's first
    log-in then costs no password check). The proof itself is checked later,
    in :func:`token_request_key`.

    :raises UseDPoPNonce: the proof's nonce is missing or not current.
    """
    nonces = state.dpop.nonces
    if nonces is None or state.settings.dpop is None:
        return
    proof = _proof_header(state)
    if proof is None:
        return
    nonce = dpop.unverified_claim(proof, "nonce")
    if not nonces.accepts(nonce, time.time()):
        _refuse_nonce(nonce, InvalidDPoPProof)


def _verified(
    state: AppState | VerifyOnlyState,
    proof: str,
    *,
    access_token: str | None,
    error: type[InvalidDPoPProof] | type[DPoPProofRefused],
    expected_jkt: str | None = None,
) -> dpop.Proof:
    settings = state.settings
    now = int(time.time())
    window = PROOF_WINDOW + settings.leeway
    try:
        unverified = dpop.read_proof(
            proof,
            method=request.method,
            uri=request.url,
            now=now,
            window=window,
            algorithms=settings.dpop_algorithms,
            access_token=access_token,
        )
    except dpop.InvalidProof as e:
        raise error(str(e)) from None
    checked = unverified.proof
    if expected_jkt is not None and checked.jkt != expected_jkt:
        raise error("The DPoP proof is signed by another key.")
    nonces = state.dpop.nonces
    if nonces is not None and not nonces.accepts(checked.nonce, now):
        # Before the replay check: a proof without a good nonce is not used up.
        _refuse_nonce(checked.nonce, error)
    # The record is asked for first and read after the signature is verified:
    # with Redis, its round trip overlaps the verification.
    pending = state.dpop.proofs.begin(
        checked.jkt, checked.jti, expires_at=checked.iat + window, now=now
    )
    try:
        unverified.verify()
    except BaseException as e:
        pending.cancel()
        if isinstance(e, dpop.InvalidProof):
            raise error(str(e)) from None
        raise
    if not pending.fresh():
        raise error("The DPoP proof was used before.")
    return checked


def token_request_key(state: AppState) -> str | None:
    """The thumbprint of the key a log-in or refresh proves possession of, or
    ``None`` for a Bearer request.

    :raises InvalidDPoPProof: the proof is missing (``"required"``), fails a
        check or was used before.
    """
    if state.settings.dpop is None:
        return None
    proof = _proof_header(state)
    if proof is None:
        if state.settings.dpop == "required":
            raise InvalidDPoPProof("A DPoP proof is required (RFC 9449).")
        return None
    return _verified(state, proof, access_token=None, error=InvalidDPoPProof).jkt


def check_binding(
    state: AppState | VerifyOnlyState,
    scheme: str,
    token: str,
    claims: t.Mapping[str, t.Any],
) -> None:
    """A protected request: a DPoP-bound token comes with the DPoP scheme and a
    proof by its key for this request and this token; a Bearer token is not
    bound (and not accepted at all when DPoP is required).

    :raises InvalidToken: the token and the scheme do not fit.
    :raises DPoPProofRefused: the proof is missing, wrong, for another key or
        used before.
    """
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if scheme == "bearer":
        if jkt is not None:
            raise InvalidToken(
                "The token is bound to a DPoP key: send it as"
                " 'Authorization: DPoP' with a proof."
            )
        if state.settings.dpop == "required":
            raise InvalidToken("Only DPoP-bound tokens are accepted.")
        return
    if not isinstance(jkt, str):
        raise InvalidToken("The token is not bound to a DPoP key: send it as Bearer.")
    proof = _proof_header(state)
    if proof is None:
        raise DPoPProofRefused("A DPoP proof is required with a DPoP token.")
    _verified(
        state, proof, access_token=token, error=DPoPProofRefused, expected_jkt=jkt
    )


def challenge(settings: Settings, error: InvalidToken) -> str:
    """The ``WWW-Authenticate`` value of a 401 with DPoP on (RFC 9449 §7.1): the
    DPoP challenge with the accepted algorithms, after the Bearer one when
    Bearer tokens are accepted too. The error goes into the DPoP challenge when
    it is a proof's, or when only DPoP is accepted; else into the Bearer one."""
    bearer = error.challenge(settings.realm)
    params = [f"realm={_quote(settings.realm)}"]
    in_dpop = isinstance(error, DPoPProofRefused) or settings.dpop == "required"
    if in_dpop and error.include_error_in_challenge:
        params.append(f"error={_quote(error.error)}")
        if error.description:
            params.append(f"error_description={_quote(error.description)}")
    params.append(f'algs="{" ".join(settings.dpop_algorithms)}"')
    dpop_challenge = "DPoP " + ", ".join(params)
    if settings.dpop == "required":
        return dpop_challenge
    if isinstance(error, DPoPProofRefused):
        bearer = f"Bearer realm={_quote(settings.realm)}"
    return f"{bearer}, {dpop_challenge}"
