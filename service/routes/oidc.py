"""Sign-in with an OpenID Connect provider (public): the providers, the redirect to one, its
callback, and the login code traded for a session; and the caller's linked identities."""

import re
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from service.deps import Caller, Oidc
from service.edge.call import ApiRequest
from service.edge.route import EdgeRoute, declare
from service.responses import NO_STORE, json_response
from service.schemas.auth import LoginTokens
from service.schemas.common import error_responses
from service.schemas.identities import (
    AuthorizeUrl,
    IdentityList,
    IdentityRead,
    IdentityUnlinked,
    LinkCodeConfirmation,
    LoginCodeExchange,
    ProviderList,
)
from service.schemas.mfa import MfaRequired
from service.services.oidc import Callback

router = APIRouter(tags=["oidc"], route_class=EdgeRoute)

# Binds a sign-in to the browser that began it: its callback is refused in any other
# (login CSRF: someone else's finished sign-in, handed to a victim's browser). Not a
# credential: it opens nothing by itself, and lives as long as a pending authorization.
BROWSER_COOKIE = "oidc_browser"
BROWSER_VALUE = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)
STATE_SECONDS = 600
# What RFC 6749 lets a code, a state and an error be (printable ASCII), and bounds that keep
# a callback's URL, percent-encoded, well inside the 16 KiB request head.
_VSCHAR = "^[\x20-\x7e]*$"


def _redirect(location: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        302: {
            "description": description,
            "headers": {
                "Location": {"description": location, "schema": {"type": "string"}},
            },
        }
    }


def _found(url: str) -> Response:
    # Built from the provider's metadata or OIDC_RETURN_URL, never from the Host header.
    return Response(status_code=302, headers={"Location": url, **NO_STORE})


@router.get("/oidc/providers", response_model=ProviderList, responses=error_responses(429, 503))
@declare(public=True)
def list_providers(request: ApiRequest, oidc: Oidc) -> Response:
    """The OpenID Connect providers users can sign in with (OIDC_PROVIDERS): send the
    browser to an item's `authorize_url`."""
    return json_response(oidc.providers())


@router.get(
    "/oidc/{name}/authorize",
    status_code=302,
    response_class=Response,
    responses={
        **_redirect(
            "The provider's authorization endpoint; or OIDC_RETURN_URL?error=provider_error "
            "when the provider does not answer",
            "To the provider's authorization endpoint (authorization code flow, PKCE S256, "
            "state and nonce). Sets the `oidc_browser` cookie that binds the sign-in to this "
            "browser.",
        ),
        **error_responses(400, 404, 422, 429, 503),
    },
)
@declare(public=True)
def oidc_authorize(
    name: str,
    request: ApiRequest,
    oidc: Oidc,
    code_challenge: Annotated[
        str | None,
        Query(
            pattern="^[A-Za-z0-9_-]{43}$",
            description="The front end's S256 challenge (RFC 7636) of a verifier it keeps: "
            "the login code is then traded at POST /oidc/token only with that verifier. "
            "Required with OIDC_REQUIRE_CODE_CHALLENGE.",
        ),
    ] = None,
) -> Response:
    """Begin signing in with the provider `name`: a browser (not a script) is sent to the
    provider, signs in there, and comes back to the callback. The state is kept by the
    service, single use, for 10 minutes. No redirect target can be chosen by the caller.
    An unknown provider is a 404; 400 without `code_challenge` while
    OIDC_REQUIRE_CODE_CHALLENGE is on."""
    browser = request.cookies.get(BROWSER_COOKIE, "")
    if not BROWSER_VALUE.fullmatch(browser):
        browser = secrets.token_urlsafe(32)
    response = _found(oidc.authorize(name=name, browser=browser, client_challenge=code_challenge))
    response.set_cookie(
        BROWSER_COOKIE,
        browser,
        max_age=STATE_SECONDS,
        path="/oidc/",
        secure=oidc.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    "/oidc/{name}/callback",
    status_code=302,
    response_class=Response,
    responses={
        **_redirect(
            "OIDC_RETURN_URL?login_code=<code> (signed in), ?link_code=<code> (linking), "
            "or ?error=<access_denied|invalid_state|email_unverified|account_exists|"
            "identity_in_use|provider_error>",
            "To OIDC_RETURN_URL: with a single-use `login_code` (60 s) for POST /oidc/token, "
            "with a single-use `link_code` (60 s) for POST /me/identities, or with an "
            "`error`. Never a token in the URL.",
        ),
        **error_responses(404, 422, 429, 503),
    },
)
@declare(public=True)
def oidc_callback(
    name: str,
    request: ApiRequest,
    oidc: Oidc,
    code: Annotated[str | None, Query(max_length=2048, pattern=_VSCHAR)] = None,
    state: Annotated[str | None, Query(max_length=512, pattern=_VSCHAR)] = None,
    error: Annotated[str | None, Query(max_length=256, pattern=_VSCHAR)] = None,
    iss: Annotated[str | None, Query(max_length=1024, pattern=_VSCHAR)] = None,
) -> Response:
    """Where the provider sends the browser back (the redirect URI registered there:
    `<PUBLIC_BASE_URL>/oidc/{name}/callback`). The code is exchanged and the ID token
    checked (signature by the provider's keys, issuer, audience, expiry, nonce); then an
    identity already linked signs in as its account, a new one with an address the
    provider vouches for (and no account has) creates an account without a password, and
    an existing account with that address is never linked by this (`account_exists`: its
    owner signs in and links)."""
    callback = Callback(code=code, state=state, error=error, iss=iss)
    browser = request.cookies.get(BROWSER_COOKIE)
    return _found(oidc.callback(name=name, callback=callback, browser=browser))


@router.post(
    "/oidc/token",
    response_model=LoginTokens,
    responses={
        **error_responses(400, 413, 415, 422, 429, 503),
        403: {
            "model": MfaRequired,
            "description": "The account has a second factor: the provider's sign-in is the "
            "first half; no session yet; send a code with the mfa_token to /login/mfa",
        },
    },
)
@declare(public=True)
def oidc_token(body: LoginCodeExchange, request: ApiRequest, oidc: Oidc) -> Response:
    """Trade the `login_code` from OIDC_RETURN_URL for a session: the same tokens as
    /login. The session is an ordinary one: logout, "log out everywhere", ending it, a
    password reset all end it. An unknown, spent or expired code is one 400, and so is one
    whose sign-in began with a `code_challenge` that `code_verifier` does not answer. When
    the account has a second factor, the answer is /login's 403 `mfa_required`: the code
    comes next, at /login/mfa."""
    tokens = oidc.exchange(
        login_code=body.login_code,
        client=request.client_info,
        code_verifier=body.code_verifier,
    )
    return json_response(tokens, headers=NO_STORE)


@router.get("/me/identities", response_model=IdentityList, responses=error_responses(401, 429, 503))
def list_identities(caller: Caller, oidc: Oidc) -> Response:
    """The identities at providers linked to the caller's account."""
    return json_response(oidc.identities(user_id=caller.user_id))


@router.post(
    "/me/identities/{name}",
    response_model=AuthorizeUrl,
    responses=error_responses(401, 404, 422, 429, 503),
)
def link_identity(name: str, caller: Caller, oidc: Oidc) -> Response:
    """Begin linking an identity at the provider `name` to the caller's account: send the
    browser to `authorize_url`; after signing in there, it lands on
    `OIDC_RETURN_URL?link_code=<code>` (or `?error=identity_in_use` when that identity is
    another account's, or this account has another one there), and the front end
    finishes with POST /me/identities. 503 when the provider does not answer."""
    return json_response(oidc.link_url(name=name, user_id=caller.user_id), headers=NO_STORE)


@router.post(
    "/me/identities",
    status_code=201,
    response_model=IdentityRead,
    responses=error_responses(400, 401, 409, 413, 415, 422, 429, 503),
)
def confirm_link(body: LinkCodeConfirmation, caller: Caller, oidc: Oidc) -> Response:
    """Finish a link with the `link_code` its callback brought back to OIDC_RETURN_URL:
    201 and the identity, now linked. Only the account that began the link can spend its
    code (a linking URL handed to somebody else links nothing): any other code, or one
    unknown, spent or expired, is one 400. 409 `identity_in_use` when the identity became
    another account's meanwhile, or this account has another one at that provider."""
    linked = oidc.confirm_link(user_id=caller.user_id, link_code=body.link_code)
    return json_response(linked, status_code=201)


@router.delete(
    "/me/identities/{name}",
    response_model=IdentityUnlinked,
    responses=error_responses(401, 404, 409, 422, 429, 503),
)
def unlink_identity(name: str, caller: Caller, oidc: Oidc) -> Response:
    """Unlink the caller's identity at the provider `name`. 409 when it is the account's
    last way to sign in (no password and no other identity): set a password first (a
    reset by mail) or link another provider."""
    return json_response(oidc.unlink(user_id=caller.user_id, name=name))
