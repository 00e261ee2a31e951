"""Attempts against an account, which the services count before they make them.

How many guesses an account's password may take, or how many mails one address may be
sent, depends on what only a service can find: the account an email reaches, whether the
client's device token is one of that account's, whether the client has signed in to it
before. The service finds those, then makes the attempt through `Attempts`, which spends
the request's rate limits with them (SlowAPI decides, service/limits/policy.py) and runs
the attempt only if every limit lets it through; else it raises RateLimited (429).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PasswordGuess:
    """A password checked against an account: what its limits are keyed by."""

    # The canonical form of the email the guess names.
    email: str
    # The account's counters: its id and credentials version (a password reset or change
    # starts them afresh), or the email when no account has it.
    account: str
    # The device a valid device token of this account names, if the client sent one.
    device: str | None = None
    # The client has signed in to this account before, from the same address.
    known_client: bool = False

    @property
    def trusted(self) -> bool:
        """Exempt from the account-wide limit: guesses from strangers never lock out
        a client the owner has used."""
        return self.device is not None or self.known_client


@dataclass(frozen=True, slots=True)
class MailRequest:
    """A mail asked for an address (a password reset, a verification mail sent again): its
    limits are keyed by it."""

    # The canonical form of the address.
    email: str


@dataclass(frozen=True, slots=True)
class CodeGuess:
    """A second-factor code (TOTP or recovery) checked against an account."""

    # The account's counter (its id); None when no code of any account is checked (a
    # malformed or dead mfa_token, or an account without the factor).
    account: str | None


@dataclass(frozen=True, slots=True)
class PasswordAndCode:
    """A password and, when the account has the second factor on, a code: both checked
    by one request (a password change, an account deletion, turning the factor off)."""

    password: PasswordGuess
    code: CodeGuess


class Attempts(Protocol):
    """Counts an attempt against the request's limits, then makes it."""

    def password_guess(self, guess: PasswordGuess, check: Callable[[], T]) -> T: ...

    def reset_mail(self, mail: MailRequest, send: Callable[[], T]) -> T: ...

    def code_guess(self, guess: CodeGuess, check: Callable[[], T]) -> T: ...

    def password_and_code(self, guess: PasswordAndCode, check: Callable[[], T]) -> T: ...
    def verification_mail(self, mail: MailRequest, send: Callable[[], T]) -> T: ...
