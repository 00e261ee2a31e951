"""The password policy (NIST SP 800-63B, 3.1.1.2): 8..128 characters, and none of what an
attacker tries first:

- one of the passwords people pick most: zxcvbn's list (the 30,000 most frequent passwords
  of real leaks, as its authors ranked them), compared without regard to case; of it, the
  11,611 entries of 8 characters or more can get past the length rule and are refused here;
- only whitespace, or one character repeated (`aaaaaaaa`);
- context-specific words: the account's email address, or its local part (the part before
  the `@`) when that is at least MIN_LOCAL_PART characters long (a shorter one, like `al`,
  is part of too many good passwords to refuse them). Compared in one canonical form,
  the one db/emails.py gives addresses (NFKC, then case folding): `ADA.Lovelace` contains
  the local part of `ada.lovelace@example.com`.

Messages say which rule failed, never the password.
"""

import re
import unicodedata
from functools import lru_cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 8
MAX_LENGTH = 128
MIN_LOCAL_PART = 3
# Python's whitespace (str.isspace), spelled out so that one pattern states the rules a
# schema can: not only whitespace, not one character repeated, no NUL (ECMA and Python
# regular expressions read it alike).
WHITESPACE = (
    r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f"
    r"\u205f\u3000"
)
SCHEMA_PATTERN = rf"^(?![{WHITESPACE}]*$)(?!([\s\S])\1*$)[^\u0000]*$"
_ONLY_WHITESPACE = re.compile(rf"[{WHITESPACE}]*")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    return frozenset(word for word in FREQUENCY_LISTS["passwords"] if len(word) >= MIN_LENGTH)


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why `password` is refused, in words that never repeat it; None when it is fine.
    `email`: the account's address, when known (registration, change, reset)."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if _ONLY_WHITESPACE.fullmatch(password):
        return "must not be only whitespace"
    if len(set(password)) == 1:
        return "must not be one character repeated"
    if password.casefold() in _common_passwords():
        return "is one of the most commonly used passwords; choose another"
    if email is not None and _contains_email(_folded(password), _folded(email.strip())):
        return "must not contain the account's email address or the part before its @"
    return None


def _contains_email(password: str, email: str) -> bool:
    local = email.rpartition("@")[0]
    return email in password or (len(local) >= MIN_LOCAL_PART and local in password)
