"""Email-verification tokens: `<user id>.<secret>` with 256 random bits, kept exactly as
reset tokens are (sessions.resets): only SHA-256 hashes, in one sorted set per account
under its hash tag, `email-verification:{u:<uid>}`, each scored by its own expiry. A newer
mail never voids an older one (whoever asks for mails to an address cannot keep its owner's
link dead); the first token used spends them all, in one script."""

from sessions.keys import user_tag
from sessions.resets import ResetToken, ResetTokens

# The same shape as a reset token; a verification token verifies nothing else.
VerificationToken = ResetToken


def verification_key(user_id: int) -> str:
    return f"email-verification:{user_tag(user_id)}"


class VerificationTokens(ResetTokens):
    key = staticmethod(verification_key)
