"""Verified email addresses and sign-in with OpenID Connect providers: bodies and answers."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from service.schemas.auth import EXAMPLE_CREATED_AT, Email
from service.schemas.common import Documented, Input, ResponseBody, examples
from sessions.resets import MAX_TOKEN_LENGTH

EXAMPLE_TOKEN = "42.Vq3m0aXkP9rT2yLwE8sJd4uB7nC1fGhZ6iOoQeRtY5w"  # noqa: S105


class EmailVerification(Input):
    """The token from the verification mail."""

    model_config = examples({"token": EXAMPLE_TOKEN})
    # A token of any other shape (too long, a lone surrogate...) is refused like an
    # unknown one, by the service: 400, not 422.
    surrogates_allowed = frozenset({"token"})
    token: Annotated[
        str,
        Documented({"maxLength": MAX_TOKEN_LENGTH}),
        Field(description="The token from the verification mail"),
    ]


class EmailVerified(ResponseBody):
    """The address is verified."""

    model_config = examples({"detail": "Email address verified", "email_verified": True})
    detail: str
    email_verified: Literal[True] = True


class VerificationResend(Input):
    """Where to send a new verification mail, if an unverified account has this address."""

    model_config = examples({"email": "ada@example.com"})
    email: Email


class ProviderItem(ResponseBody):
    """A provider users can sign in with: send the browser to `authorize_url`."""

    name: str = Field(description="As in OIDC_PROVIDERS, and in the routes /oidc/{name}/...")
    authorize_url: str = Field(description="<PUBLIC_BASE_URL>/oidc/{name}/authorize")


class ProviderList(ResponseBody):
    """The providers configured, in the order OIDC_PROVIDERS names them."""

    model_config = examples(
        {
            "items": [
                {"name": "corp", "authorize_url": "https://api.example.com/oidc/corp/authorize"}
            ]
        }
    )
    items: list[ProviderItem]


class LoginCodeExchange(Input):
    """The `login_code` the browser brought back to OIDC_RETURN_URL."""

    model_config = examples({"login_code": EXAMPLE_TOKEN})
    surrogates_allowed = frozenset({"login_code"})
    login_code: Annotated[
        str,
        Documented({"maxLength": MAX_TOKEN_LENGTH}),
        Field(description="Single use, valid for 60 seconds"),
    ]
    code_verifier: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._~-]{43,128}$",
        description="The verifier of the `code_challenge` the sign-in began with (RFC 7636); "
        "required when it began with one",
    )


class LinkCodeConfirmation(Input):
    """The `link_code` the browser brought back to OIDC_RETURN_URL after linking."""

    model_config = examples({"link_code": "Vq3m0aXkP9rT2yLwE8sJd4uB7nC1fGhZ6iOoQeRtY5w"})
    surrogates_allowed = frozenset({"link_code"})
    link_code: Annotated[
        str,
        Documented({"maxLength": MAX_TOKEN_LENGTH}),
        Field(description="Single use, valid for 60 seconds, for the account that began the link"),
    ]


class AuthorizeUrl(ResponseBody):
    """Where to send the browser to link an identity at the provider to this account."""

    model_config = examples(
        {"authorize_url": "https://login.example.com/authorize?response_type=code&..."}
    )
    authorize_url: str = Field(
        description="The provider's authorization URL; its `state` is bound to the caller "
        "and lives 10 minutes"
    )


class IdentityRead(ResponseBody):
    """An identity at a provider, linked to the account."""

    model_config = examples(
        {
            "provider": "corp",
            "subject": "248289761001",
            "email": "ada@example.com",
            "linked_at": EXAMPLE_CREATED_AT,
        }
    )

    provider: str
    subject: str = Field(description="The provider's `sub` for the user")
    email: str | None = Field(description="The address the provider named when it was linked")
    linked_at: datetime


class IdentityList(ResponseBody):
    """The account's linked identities, oldest first."""

    model_config = examples(
        {
            "items": [
                {
                    "provider": "corp",
                    "subject": "248289761001",
                    "email": "ada@example.com",
                    "linked_at": EXAMPLE_CREATED_AT,
                }
            ]
        }
    )
    items: list[IdentityRead]


class IdentityUnlinked(ResponseBody):
    """The identity is no longer linked: signing in there no longer signs in here."""

    model_config = examples({"provider": "corp", "unlinked": True})
    provider: str
    unlinked: Literal[True] = True
