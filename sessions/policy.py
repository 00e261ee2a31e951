"""The password policy: 8..128 characters, and not one of the passwords people pick most.

The list is zxcvbn's (the 30,000 most frequent passwords of real leaks, as its authors
ranked them), compared without regard to case; of it, the 11,611 entries of 8 characters
or more can get past the length rule and are refused here.
"""

from functools import lru_cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 8
MAX_LENGTH = 128


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    return frozenset(word for word in FREQUENCY_LISTS["passwords"] if len(word) >= MIN_LENGTH)


def password_problem(password: str) -> str | None:
    """Why `password` is refused, in words that never repeat it; None when it is fine."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if password.casefold() in _common_passwords():
        return "is one of the most commonly used passwords; choose another"
    return None
