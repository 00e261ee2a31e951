"""The caller's own account: who am I, change the password, leave; log out here or
everywhere."""

from fastapi import APIRouter, Response

from service.deps import Accounts, Attempts, Caller, OwnSessions, Passwords
from service.edge.route import EdgeRoute, declare
from service.responses import NO_STORE, json_response
from service.schemas.auth import (
    AccountDeleted,
    AccountDeletion,
    AccountRead,
    Message,
    PasswordChange,
    PasswordChanged,
)
from service.schemas.common import error_responses
from service.schemas.sessions import RevokedCount

router = APIRouter(tags=["account"], route_class=EdgeRoute)


@router.get("/me", response_model=AccountRead, responses=error_responses(401, 404, 429, 503))
def read_me(caller: Caller, accounts: Accounts) -> Response:
    """The caller's account: whether its address is verified and its second factor on."""
    return json_response(accounts.me(user_id=caller.user_id), headers=NO_STORE)


@router.post(
    "/me/password",
    response_model=PasswordChanged,
    responses=error_responses(401, 403, 413, 415, 422, 429, 503),
)
@declare(hashes_passwords=True, limits="password_and_code")
def change_password(
    body: PasswordChange, caller: Caller, passwords: Passwords, attempts: Attempts
) -> Response:
    """Change the password, after checking the current one (403 when wrong, and nothing
    changes). Every other session of the account ends; this one stays live; reset links
    already mailed stop working. The check counts against the login limits like a login
    from a client the account does not know. With the second factor on, `code` is
    needed too (403 without it or when wrong), counted against `MFA_RATE_LIMIT`."""
    result = passwords.change(
        user_id=caller.user_id,
        session_id=caller.session_id,
        current_password=body.current_password,
        new_password=body.new_password,
        attempts=attempts,
        code=body.code,
    )
    return json_response(result)


@router.delete(
    "/me",
    response_model=AccountDeleted,
    responses=error_responses(401, 403, 413, 415, 422, 429, 503),
)
@declare(hashes_passwords=True, limits="password_and_code")
def delete_me(
    body: AccountDeletion, caller: Caller, accounts: Accounts, attempts: Attempts
) -> Response:
    """Delete the caller's account, its tasks and every session, after checking the
    password (403 when wrong, and nothing changes); with the second factor on, a code too
    (403 without it or when wrong). The email can register again."""
    deleted = accounts.delete(
        user_id=caller.user_id, password=body.password, attempts=attempts, code=body.code
    )
    return json_response(deleted)


@router.post("/logout", response_model=Message, responses=error_responses(401, 429, 503))
@declare(limits="revocation")
def logout(caller: Caller, sessions: OwnSessions) -> Response:
    """End this session: its access and refresh tokens are refused from the next
    request on, on every worker and replica. Never refused because the account's budget
    is spent: counted against `REVOKE_RATE_LIMIT` per session instead."""
    sessions.logout(user_id=caller.user_id, session_id=caller.session_id)
    return json_response({"detail": "Logged out"})


@router.post("/logout/all", response_model=RevokedCount, responses=error_responses(401, 429, 503))
@declare(limits="revocation")
def logout_all(caller: Caller, sessions: OwnSessions) -> Response:
    """End every session of the caller's account, this one included. Counted against
    `REVOKE_RATE_LIMIT` per session, not the budget."""
    return json_response({"revoked": sessions.logout_all(user_id=caller.user_id)})
