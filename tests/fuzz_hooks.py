"""Schemathesis hooks, loaded by the CLI through SCHEMATHESIS_HOOKS=tests.fuzz_hooks.

- A real token for every generated request (dynamic auth): the account is created on
  first use and a fresh token is fetched every minute.
- `format: email` alone admits more than the API takes. The schema states the special-use
  domains it refuses (`.local`, `.test`, `localhost`...) as a pattern and the 254-character
  bound, which schemathesis honours; email-validator has further rules no JSON schema can
  state (IDNA, quoting), so generated emails are still drawn from those it accepts."""

import os
import uuid
from typing import Any

import requests
import schemathesis
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from pydantic.networks import EmailStr

BASE_URL = os.environ["FUZZ_BASE_URL"]
EMAIL = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
PASSWORD = "fuzzing password"


_EMAIL = TypeAdapter(EmailStr)


def _accepted_email(value: str) -> bool:
    try:
        _EMAIL.validate_python(value)
    except ValidationError:
        return False
    return len(value) <= 254


schemathesis.openapi.format("email", st.emails().filter(_accepted_email))


@schemathesis.auth(refresh_interval=60)
class FreshToken:
    def get(self, case: Any, context: Any) -> str:
        credentials = {"email": EMAIL, "password": PASSWORD}
        requests.post(f"{BASE_URL}/register", json=credentials, timeout=30)
        response = requests.post(f"{BASE_URL}/login", json=credentials, timeout=30)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
