"""An authenticator app for the tests, and an account with the second factor on."""

import time
from dataclasses import dataclass
from typing import Any

import pyotp

from tests.support.api import PASSWORD, Api, Tokens

STEP = 30


class Authenticator:
    """The app a user scanned the secret into. Each code it gives is of a time step the
    server has not accepted yet (it accepts a step once): the current one, then the next
    (the server allows one step of drift); past those it waits for the next step, within
    a deadline, rather than a fixed sleep."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last_step = -1

    def code(self, *, within: float = 2 * STEP + 5) -> str:
        deadline = time.monotonic() + within
        while True:
            now = int(time.time() // STEP)
            for step in (now, now + 1):
                if step > self.last_step:
                    self.last_step = step
                    return self.totp.at(step * STEP)
            assert time.monotonic() < deadline, "no fresh time step within the deadline"
            time.sleep(min(0.5, STEP - time.time() % STEP + 0.05))

    @property
    def last_code(self) -> str:
        """The code given last: a replay, once the server accepted it."""
        return self.totp.at(self.last_step * STEP)

    def wrong_code(self) -> str:
        """A 6-digit code of no step near now."""
        near = {self.totp.at(time.time() + offset * STEP) for offset in range(-3, 4)}
        return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in near)


@dataclass
class Enrolled:
    """An account with the second factor on, and a session started before it was."""

    email: str
    tokens: Tokens
    app: Authenticator
    recovery_codes: list[str]
    enrolment: dict[str, Any]


def enrol(
    api: Api, tokens: Tokens, password: str = PASSWORD
) -> tuple[Authenticator, dict[str, Any]]:
    """Start an enrolment: the app with the secret scanned in, and the answer."""
    response = api.post("/me/mfa/totp", json={"password": password}, headers=tokens.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return Authenticator(body["secret"]), body


def enrolled(api: Api, email: str | None = None) -> Enrolled:
    email = api.register(email)
    tokens = api.login(email)
    app, body = enrol(api, tokens)
    confirmed = api.post("/me/mfa/totp/confirm", json={"code": app.code()}, headers=tokens.headers)
    assert confirmed.status_code == 200, confirmed.text
    return Enrolled(email, tokens, app, confirmed.json()["recovery_codes"], body)


def first_half(api: Api, email: str, **body: Any) -> dict[str, Any]:
    """/login with the right password for an account with the factor on: its 403 body."""
    response = api.post("/login", json={"email": email, "password": PASSWORD, **body})
    assert response.status_code == 403, response.text
    answer: dict[str, Any] = response.json()
    return answer


def login_with(api: Api, email: str, code: str, **body: Any) -> Any:
    """Both halves of a login; the answer of the second."""
    token = first_half(api, email, **body)["mfa_token"]
    return api.post("/login/mfa", json={"mfa_token": token, "code": code})
