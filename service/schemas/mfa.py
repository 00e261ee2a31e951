"""The second factor's bodies: enrolment, recovery codes, the login's second half."""

from typing import Annotated, Literal

from pydantic import Field

from service.schemas.auth import Password, SecondFactorCode
from service.schemas.common import Documented, Input, ResponseBody, examples
from sessions.mfa_tokens import MAX_TOKEN_LENGTH

EXAMPLE_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 (an example)
EXAMPLE_URI = (
    "otpauth://totp/Tasks%20service:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    "&issuer=Tasks%20service"
)
EXAMPLE_CODES = [f"{n}bcde-fghjk" for n in range(2, 10)] + ["xbcde-fghjk", "ybcde-fghjk"]
EXAMPLE_MFA_TOKEN = "42.3kLq0wVY2d5nq5jv0Pq1ZA9sT0cQx1bQ2y6i7uVw3nXgm"  # noqa: S105


class TotpEnrolment(Input):
    """The account's password, to prove it is the owner."""

    model_config = examples({"password": "correct horse battery"})
    password: Password


class TotpEnrolled(ResponseBody):
    """A new TOTP secret, pending until a code of it confirms it (POST /me/mfa/totp/
    confirm). Shown this once: it is never returned again."""

    model_config = examples(
        {"secret": EXAMPLE_SECRET, "otpauth_uri": EXAMPLE_URI, "qr_svg": "<svg ...>...</svg>"}
    )
    secret: str = Field(description="Base32, for typing into an authenticator app")
    otpauth_uri: str = Field(
        description="The same as an otpauth:// URI (RFC 6238: SHA-1, 6 digits, 30 s steps)"
    )
    qr_svg: str = Field(description="The URI as a QR code: an SVG document, ready to inline")


class TotpConfirmation(Input):
    """A code the authenticator app shows for the pending secret."""

    model_config = examples({"code": "123456"})
    code: SecondFactorCode


class RecoveryCodes(ResponseBody):
    """Ten recovery codes, each usable once in place of a TOTP code. Shown this once:
    only their hashes are kept."""

    model_config = examples({"recovery_codes": EXAMPLE_CODES})
    recovery_codes: list[str] = Field(min_length=10, max_length=10)


class PasswordAndCode(Input):
    """The account's password and a second-factor code (TOTP or recovery code)."""

    model_config = examples(
        {"password": "correct horse battery", "code": "123456"},
        {"password": "correct horse battery", "code": "2bcde-fghjk"},
    )
    password: Password
    code: SecondFactorCode


class MfaLogin(Input):
    """The second half of a login: the `mfa_token` the first half answered, and a code."""

    model_config = examples(
        {"mfa_token": EXAMPLE_MFA_TOKEN, "code": "123456"},
        {"mfa_token": EXAMPLE_MFA_TOKEN, "code": "2bcde-fghjk"},
    )
    # A token of any other shape is refused like an unknown one: 401, not 422.
    surrogates_allowed = frozenset({"mfa_token"})
    mfa_token: Annotated[
        str,
        Documented({"maxLength": MAX_TOKEN_LENGTH}),
        Field(description="From the 403 `mfa_required` answer of /login"),
    ]
    code: SecondFactorCode


class MfaRequired(ResponseBody):
    """The password was right and the account has a second factor: no session yet. Send a
    code with `mfa_token` to /login/mfa within `expires_in` seconds."""

    model_config = examples(
        {
            "detail": "A second factor is required: send a code to /login/mfa with the mfa_token",
            "code": "mfa_required",
            "mfa_token": EXAMPLE_MFA_TOKEN,
            "methods": ["totp", "recovery_code"],
            "expires_in": 300,
        }
    )
    detail: str
    code: Literal["mfa_required"] = "mfa_required"
    mfa_token: str = Field(
        description="Single use; dies after 5 wrong codes, when it expires, or with a password "
        "change"
    )
    methods: list[Literal["totp", "recovery_code"]]
    expires_in: int = Field(description="Seconds the mfa_token lives")
