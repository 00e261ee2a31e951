"""Verified email addresses (public): verify with the mailed token, ask for the mail again."""

from fastapi import APIRouter, Response

from service.deps import Attempts, Verification
from service.edge.call import ApiRequest
from service.edge.route import EdgeRoute, declare
from service.responses import json_response
from service.schemas.auth import Message
from service.schemas.common import error_responses
from service.schemas.identities import EmailVerification, EmailVerified, VerificationResend

# The same for every address: known, unknown or already verified.
VERIFICATION_REQUESTED = (
    "If an unverified account exists for this email, a verification message is on its way"
)
router = APIRouter(tags=["email"], route_class=EdgeRoute)


@router.post(
    "/email/verify",
    response_model=EmailVerified,
    responses=error_responses(400, 413, 415, 422, 429, 503),
)
@declare(public=True)
def verify_email(
    body: EmailVerification, request: ApiRequest, verification: Verification
) -> Response:
    """Verify the account's address with the token from its verification mail. The token,
    and every other mailed to the account, is spent. An unknown, spent, expired or
    malformed token is one 400, and nothing changes."""
    return json_response(verification.verify(token=body.token))


@router.post(
    "/email/verify/resend",
    status_code=202,
    response_model=Message,
    responses=error_responses(413, 415, 422, 429, 503),
)
@declare(public=True, limits="verification_mail")
def resend_verification(
    body: VerificationResend, request: ApiRequest, verification: Verification, attempts: Attempts
) -> Response:
    """Ask for a new verification mail. The answer is the same, and as fast, for every
    address, known, unknown or already verified; a mail goes out only when an unverified
    account has it, and the tokens mailed before keep working. Limited by
    `EMAIL_VERIFICATION_RATE_LIMIT` per client IP and per address."""
    verification.request(email=str(body.email), attempts=attempts)
    return json_response({"detail": VERIFICATION_REQUESTED}, status_code=202)
