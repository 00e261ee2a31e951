"""The caller's own account: who am I, change the password, leave; log out here or
everywhere."""

from fastapi import APIRouter, Request, Response

from service.deps import CurrentPrincipal
from service.responses import NO_STORE, json_response
from service.runtime import Runtime
from service.schemas.auth import (
    AccountDeleted,
    AccountDeletion,
    Message,
    PasswordChange,
    PasswordChanged,
    UserRead,
)
from service.schemas.common import error_responses
from service.schemas.sessions import RevokedCount
from service.threads import hashes_passwords


def build_router(runtime: Runtime) -> APIRouter:
    accounts, limits = runtime.accounts, runtime.limits
    own_sessions, passwords = runtime.session_service, runtime.password_service
    router = APIRouter(tags=["account"], route_class=runtime.route_class)

    @router.get("/me", response_model=UserRead, responses=error_responses(401, 404, 429, 503))
    def read_me(principal: CurrentPrincipal, request: Request) -> Response:
        """The caller's account."""
        return json_response(accounts.me(user_id=principal.user_id), headers=NO_STORE)

    @router.post(
        "/me/password",
        response_model=PasswordChanged,
        responses=error_responses(401, 403, 413, 422, 429, 503),
    )
    @limits.password_guess
    @hashes_passwords
    def change_password(
        body: PasswordChange, principal: CurrentPrincipal, request: Request
    ) -> Response:
        """Change the password, after checking the current one (403 when wrong, and nothing
        changes). Every other session of the account ends; this one stays live. Counts
        against `LOGIN_RATE_LIMIT` like a login."""
        result = passwords.change(
            user_id=principal.user_id,
            session_id=principal.session_id,
            current_password=body.current_password,
            new_password=body.new_password,
        )
        limits.forgive_failed_login(request)
        return json_response(result)

    @router.delete(
        "/me",
        response_model=AccountDeleted,
        responses=error_responses(401, 403, 413, 422, 429, 503),
    )
    @limits.password_guess
    @hashes_passwords
    def delete_me(body: AccountDeletion, principal: CurrentPrincipal, request: Request) -> Response:
        """Delete the caller's account, its tasks and every session, after checking the
        password (403 when wrong, and nothing changes). The email can register again."""
        result = accounts.delete(user_id=principal.user_id, password=body.password)
        limits.forgive_failed_login(request)
        return json_response(result)

    @router.post("/logout", response_model=Message, responses=error_responses(401, 429, 503))
    def logout(principal: CurrentPrincipal, request: Request) -> Response:
        """End this session: its access and refresh tokens are refused from the next
        request on, on every worker and replica."""
        own_sessions.logout(user_id=principal.user_id, session_id=principal.session_id)
        return json_response({"detail": "Logged out"})

    @router.post(
        "/logout/all", response_model=RevokedCount, responses=error_responses(401, 429, 503)
    )
    def logout_all(principal: CurrentPrincipal, request: Request) -> Response:
        """End every session of the caller's account, this one included."""
        return json_response({"revoked": own_sessions.logout_all(user_id=principal.user_id)})

    return router
