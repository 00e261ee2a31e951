"""The second factor's secrets and codes: TOTP (RFC 6238 with pyotp: SHA-1, 6 digits,
30 s steps), the secret sealed at rest, and recovery codes.

- **Sealed secrets.** A TOTP secret is stored encrypted with `cryptography`'s MultiFernet
  over the keys of `MFA_ENCRYPTION_KEY`: the first key encrypts, every key decrypts, so a
  new key is put first and the old ones stay until every secret was sealed again
  (`reseal`). The plaintext names the account (`<user id>:<secret>`), so a secret copied
  to another account's row does not open there.
- **Replay.** `matching_step` answers the time step a code belongs to (the current one, or
  one step either side for clock drift); the caller accepts it only if it is later than
  the account's last accepted step, in one compare-and-set (db/repositories.py), so a code
  is accepted once, even by two logins at the same moment.
- **Recovery codes.** Ten codes of 48 random bits (`xxxxx-xxxxx`, an alphabet without
  look-alike characters), each usable once. They are stored as HMAC-SHA256 under a key
  derived from the account's TOTP secret, itself sealed under the server's key: a database
  dump alone cannot test a guess, one hash per code is found by an index (no slow hash
  tried against ten rows), and a key rotation, which seals the same secret again, keeps
  them valid.
"""

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

DIGITS = 6
STEP_SECONDS = 30
# Steps either side of the current one a code may belong to (clock drift).
DRIFT_STEPS = 1
RECOVERY_CODES = 10
# No 0/o, 1/l/i, u/v: read from paper, typed by hand.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstwxyz23456789"
RECOVERY_LENGTH = 10
_TOTP_CODE = re.compile(r"[0-9]{6}", re.ASCII)
_PURPOSE_KEY = b"mfa-encryption-key"
_PURPOSE_RECOVERY = b"recovery-code"


class SecretUnreadable(Exception):
    """A sealed secret that no configured key opens, or that belongs to another account."""


def derived_key(secret: str) -> str:
    """A Fernet key derived from the service's JWT secret, for this purpose only: what
    development and test use when MFA_ENCRYPTION_KEY is not set."""
    digest = hmac.new(secret.encode(), _PURPOSE_KEY, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


def valid_key(key: str) -> bool:
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return True


class SecretBox:
    """Seals and opens TOTP secrets with MultiFernet: `keys[0]` seals, any key opens."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def seal(self, *, user_id: int, secret: str) -> str:
        return self._fernet.encrypt(f"{user_id}:{secret}".encode()).decode()

    def open(self, *, user_id: int, sealed: str) -> str:
        try:
            owner, _, secret = self._fernet.decrypt(sealed.encode()).decode().partition(":")
        except InvalidToken:
            raise SecretUnreadable("no configured key opens it") from None
        if owner != str(user_id):
            raise SecretUnreadable("sealed for another account")
        return secret

    def reseal(self, sealed: str) -> str:
        """The same secret under the first key (a key rotation)."""
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("no configured key opens it") from None


def new_secret() -> str:
    """160 random bits in base32, as RFC 4226 recommends."""
    return pyotp.random_base32(32)


def provisioning_uri(*, secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as a QR code, an SVG document (no XML declaration: ready to inline)."""
    qr = segno.make(uri, error="m", micro=False)
    svg: str = qr.svg_inline(scale=4, title="Scan with an authenticator app")
    return svg


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def is_totp_code(code: str) -> bool:
    return _TOTP_CODE.fullmatch(code) is not None


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step whose code `code` is, among the current one and DRIFT_STEPS either
    side; None when it is none of them (or not a 6-digit code)."""
    if not is_totp_code(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    step = current_step(now)
    for candidate in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(candidate * STEP_SECONDS), code):
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class RecoveryCodes:
    """Codes to show once, and what is stored of them."""

    codes: list[str]
    hashes: list[str]


def normalized_recovery_code(code: str) -> str | None:
    """The code as stored (lower case, no blanks or dashes), or None when it cannot be
    one: typed with either case, spaces or the dash, it is the same code."""
    plain = re.sub(r"[\s-]", "", code).lower()
    if len(plain) != RECOVERY_LENGTH or any(c not in RECOVERY_ALPHABET for c in plain):
        return None
    return plain


def recovery_hash(*, secret: str, code: str) -> str:
    """HMAC-SHA256 of a normalized code under a key derived from the account's secret."""
    key = hmac.new(secret.encode(), _PURPOSE_RECOVERY, hashlib.sha256).digest()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def new_recovery_codes(secret: str) -> RecoveryCodes:
    unique: set[str] = set()
    while len(unique) < RECOVERY_CODES:
        unique.add("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH)))
    plain = sorted(unique)
    half = RECOVERY_LENGTH // 2
    return RecoveryCodes(
        codes=[f"{code[:half]}-{code[half:]}" for code in plain],
        hashes=[recovery_hash(secret=secret, code=code) for code in plain],
    )
