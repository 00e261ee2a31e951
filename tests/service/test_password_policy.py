"""The password policy over HTTP: the rules beyond length and the common-password list,
for registration, a password change and (in test_password_reset.py) a reset."""

import uuid

import pytest

from tests.support.api import PASSWORD, Api


def _email(local: str) -> str:
    return f"{local}@{uuid.uuid4().hex[:10]}.example.com"


@pytest.mark.parametrize(
    ("local", "password", "rule"),
    [
        ("plain", " " * 12, "only whitespace"),
        ("plain", "\t \n " * 3, "only whitespace"),
        ("plain", "z" * 12, "one character repeated"),
        ("plain", "🔑" * 9, "one character repeated"),
        ("ada.lovelace", "ADA.Lovelace rules", "email address"),
        ("ada.lovelace", "my ada.lovelace@{domain}!", "email address"),
        ("bob", "hello bob, hello", "email address"),
        ("straße", "STRASSE is my street", "email address"),
    ],
)
def test_registration_refuses_by_rule_and_names_it(
    api: Api, local: str, password: str, rule: str
) -> None:
    email = _email(local)
    password = password.replace("{domain}", email.split("@")[1])
    response = api.post("/register", json={"email": email, "password": password})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "password"]
    assert error["type"] == "password_policy"
    assert rule in error["msg"]
    assert password not in response.text
    # Nothing was created: the address is still free.
    assert api.post("/register", json={"email": email, "password": PASSWORD}).status_code == 201


@pytest.mark.parametrize(
    ("local", "password"),
    [
        ("al", "al is a good passphrase"),  # a local part under 3 characters is no rule
        ("plain", "aaaaaaab"),  # not one character repeated
        ("plain", " padded passphrase "),
        ("ada", "a-d-a passphrase ok"),
    ],
)
def test_passwords_near_a_rule_are_taken(api: Api, local: str, password: str) -> None:
    response = api.post("/register", json={"email": _email(local), "password": password})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("new_password", "rule"),
    [
        ("            ", "only whitespace"),
        ("xxxxxxxxxx", "one character repeated"),
        ("{local} forever", "email address"),
        ("iloveyou", "most commonly used"),
    ],
)
def test_a_password_change_refuses_by_the_same_rules_and_changes_nothing(
    api: Api, new_password: str, rule: str
) -> None:
    local = f"carol.{uuid.uuid4().hex[:6]}"
    email = api.register(_email(local))
    tokens, other = api.login(email), api.login(email)
    new_password = new_password.format(local=local.upper())
    response = api.post(
        "/me/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=tokens.headers,
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "new_password"]
    assert error["type"] == "password_policy"
    assert rule in error["msg"]
    assert new_password not in response.text
    # Nothing changed: the old password logs in, the other session lives.
    assert api.login(email).access_token
    assert api.get("/me", headers=other.headers).status_code == 200
