"""The public account routes: register, log in, refresh, reset a forgotten password."""

from fastapi import APIRouter, Response

from service.deps import Accounts, Attempts, Passwords
from service.edge.call import ApiRequest
from service.edge.route import EdgeRoute, declare
from service.responses import NO_STORE, json_response
from service.schemas.auth import (
    Credentials,
    LoginTokens,
    Message,
    PasswordForgot,
    PasswordReset,
    RefreshRequest,
    Registration,
    TokenPair,
    UserRead,
)
from service.schemas.common import error_responses
from service.schemas.mfa import MfaRequired

# The same for every address, known or not.
RESET_REQUESTED = "If an account exists for this email, a reset message is on its way"
router = APIRouter(tags=["auth"], route_class=EdgeRoute)


@router.post(
    "/register",
    status_code=201,
    response_model=UserRead,
    responses=error_responses(409, 413, 415, 422, 429, 503),
)
@declare(public=True, hashes_passwords=True, limits="registration")
def register(body: Registration, request: ApiRequest, accounts: Accounts) -> Response:
    """Create an account. The email is compared in one canonical form (case and Unicode
    spelling do not matter), so a second spelling of a registered address is a 409.
    Limited by `REGISTER_RATE_LIMIT` per client IP. Does not log in: call /login next."""
    user = accounts.register(email=str(body.email), password=body.password)
    return json_response(user, status_code=201)


@router.post(
    "/login",
    response_model=LoginTokens,
    responses={
        **error_responses(401, 413, 415, 422, 429, 503),
        403: {
            "model": MfaRequired,
            "description": "The password is right and the account has a second factor: no "
            "session yet; send a code with the mfa_token to /login/mfa",
        },
    },
)
@declare(public=True, hashes_passwords=True, limits="password_guess")
def login(
    body: Credentials, request: ApiRequest, accounts: Accounts, attempts: Attempts
) -> Response:
    """Start a session: an access token (a short-lived JWT), a refresh token, and a device
    token to keep and send with the next logins of this client. An unknown email and a
    wrong password get the same 401, in the same time. Limited by `LOGIN_RATE_LIMIT` per
    client IP and account, and `LOGIN_ACCOUNT_RATE_LIMIT` per account from all clients
    but those its owner used: a login that sends a valid device token of the account is
    counted against `LOGIN_DEVICE_RATE_LIMIT` (that device's) instead, and a client
    address that signed in to the account before is not counted, so guesses from
    elsewhere never lock its owner out. A forged, expired or other account's device token
    is ignored. Past `MAX_SESSIONS_PER_USER` live sessions, the least recently used one
    ends. For an account with the second factor on, the right password answers 403
    `mfa_required` with an `mfa_token` instead, and no session: POST /login/mfa with a
    code completes the login (a device token never skips it)."""
    tokens = accounts.login(
        email=str(body.email),
        password=body.password,
        client=request.client_info,
        attempts=attempts,
        device_token=body.device_token,
    )
    return json_response(tokens, headers=NO_STORE)


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses=error_responses(401, 413, 415, 422, 429, 503),
)
@declare(public=True)
def refresh(body: RefreshRequest, request: ApiRequest, accounts: Accounts) -> Response:
    """Trade the refresh token for a new pair; the session's previous tokens stop
    working at once. Within `REFRESH_GRACE_SECONDS` the token just rotated away returns
    the same new pair again (parallel tabs, a retry). A refresh token spent before that
    is a replay: the whole session is revoked and the answer is 401."""
    tokens = accounts.refresh(refresh_token=body.refresh_token)
    return json_response(tokens, headers=NO_STORE)


@router.post(
    "/password/forgot",
    status_code=202,
    response_model=Message,
    responses=error_responses(413, 415, 422, 429, 503),
)
@declare(public=True, limits="reset_mail")
def forgot_password(
    body: PasswordForgot, request: ApiRequest, passwords: Passwords, attempts: Attempts
) -> Response:
    """Ask for a password-reset mail. The answer is the same, and as fast, for every
    address, known or not; when an account has it, a single-use token is mailed.
    Limited by `PASSWORD_RESET_RATE_LIMIT` per client IP and per address."""
    passwords.request_reset(email=str(body.email), attempts=attempts)
    return json_response({"detail": RESET_REQUESTED}, status_code=202)


@router.post(
    "/password/reset",
    response_model=Message,
    responses=error_responses(400, 413, 415, 422, 429, 503),
)
@declare(public=True, hashes_passwords=True)
def reset_password(body: PasswordReset, request: ApiRequest, passwords: Passwords) -> Response:
    """Set a new password with the token from the reset mail. Every session of the
    account ends and the token is spent. An unknown, spent or expired token is a 400
    and changes nothing."""
    passwords.reset(token=body.token, new_password=body.new_password)
    return json_response({"detail": "Password changed; every session has been ended"})
