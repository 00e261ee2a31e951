"""The second factor (TOTP and recovery codes): the caller's enrolment and its end, and
the second half of a login."""

from fastapi import APIRouter, Response

from service.deps import Attempts, Caller, SecondFactor
from service.edge.call import ApiRequest
from service.edge.route import EdgeRoute, declare
from service.responses import NO_STORE, json_response
from service.schemas.auth import LoginTokens, Message
from service.schemas.common import error_responses
from service.schemas.mfa import (
    MfaLogin,
    PasswordAndCode,
    RecoveryCodes,
    TotpConfirmation,
    TotpEnrolled,
    TotpEnrolment,
)

router = APIRouter(tags=["second factor"], route_class=EdgeRoute)


@router.post(
    "/login/mfa",
    response_model=LoginTokens,
    responses=error_responses(401, 413, 415, 422, 429, 503),
)
@declare(public=True, limits="code_guess")
def login_mfa(
    body: MfaLogin, request: ApiRequest, second_factor: SecondFactor, attempts: Attempts
) -> Response:
    """The second half of a login to an account with a second factor: the `mfa_token` of
    /login's 403 and a code of the authenticator app, or a recovery code. Answers what
    /login answers for an account without one (a new session, its device token renewed).
    A wrong code, a spent or expired `mfa_token` all get the same 401; the token dies
    after 5 wrong codes. A TOTP code is accepted once; a recovery code once. Limited by
    `MFA_RATE_LIMIT` per account, from every client together."""
    tokens = second_factor.login(
        mfa_token=body.mfa_token,
        code=body.code,
        client=request.client_info,
        attempts=attempts,
    )
    return json_response(tokens, headers=NO_STORE)


@router.post(
    "/me/mfa/totp",
    response_model=TotpEnrolled,
    responses=error_responses(401, 403, 409, 413, 415, 422, 429, 503),
)
@declare(hashes_passwords=True, limits="password_guess")
def enrol_totp(
    body: TotpEnrolment, caller: Caller, second_factor: SecondFactor, attempts: Attempts
) -> Response:
    """Start turning on a TOTP second factor, with the password (403 when wrong): a new
    secret, as text, an `otpauth://` URI and a QR code (SVG), shown this once. It stays
    pending, and logins unchanged, until POST /me/mfa/totp/confirm; enrolling again
    replaces a pending secret. 409 when the factor is on already."""
    enrolled = second_factor.enrol(
        user_id=caller.user_id, password=body.password, attempts=attempts
    )
    return json_response(enrolled, headers=NO_STORE)


@router.post(
    "/me/mfa/totp/confirm",
    response_model=RecoveryCodes,
    responses=error_responses(400, 401, 409, 413, 415, 422, 429, 503),
)
@declare(limits="code_guess")
def confirm_totp(
    body: TotpConfirmation, caller: Caller, second_factor: SecondFactor, attempts: Attempts
) -> Response:
    """Turn the pending secret on with a code the app shows for it (400 when wrong; 409
    when nothing is pending). Answers ten recovery codes, shown this once. From now on
    every login asks for a code. Counted against `MFA_RATE_LIMIT`."""
    codes = second_factor.confirm(user_id=caller.user_id, code=body.code, attempts=attempts)
    return json_response({"recovery_codes": codes}, headers=NO_STORE)


@router.delete(
    "/me/mfa/totp",
    response_model=Message,
    responses=error_responses(401, 403, 409, 413, 415, 422, 429, 503),
)
@declare(hashes_passwords=True, limits="password_and_code")
def disable_totp(
    body: PasswordAndCode, caller: Caller, second_factor: SecondFactor, attempts: Attempts
) -> Response:
    """Turn the second factor off, with the password and a code (TOTP or recovery): 403
    when either is wrong, 409 when it is not on. The secret and every recovery code are
    gone; sessions stay."""
    second_factor.turn_off(
        user_id=caller.user_id, password=body.password, code=body.code, attempts=attempts
    )
    return json_response({"detail": "The second factor is off"})


@router.post(
    "/me/mfa/recovery-codes",
    response_model=RecoveryCodes,
    responses=error_responses(401, 403, 409, 413, 415, 422, 429, 503),
)
@declare(hashes_passwords=True, limits="password_and_code")
def new_recovery_codes(
    body: PasswordAndCode, caller: Caller, second_factor: SecondFactor, attempts: Attempts
) -> Response:
    """Ten new recovery codes, shown this once, with the password and a code (403 when
    either is wrong, 409 when the factor is off); every earlier recovery code stops
    working."""
    codes = second_factor.new_recovery_codes(
        user_id=caller.user_id, password=body.password, code=body.code, attempts=attempts
    )
    return json_response({"recovery_codes": codes}, headers=NO_STORE)
