"""A headless browser for the test OpenID Provider (tests/support/oidc_provider.py): a
requests.Session that follows redirects one at a time, fills in the provider's login and
consent forms, and stops at the redirect that leaves the provider, the client's callback with
`code` and `state` (or `error`), which it returns without following."""

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests

from tests.support.oidc_provider import OidcAccount


class SignInFailed(AssertionError):
    """The provider answered with something else than a redirect or one of its forms: an
    error page (an unknown client, a redirect URI it does not know) or refused credentials."""


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            method = attributes.get("method", "get").upper()
            self.forms.append(Form(attributes.get("action", ""), method))
        elif tag == "input" and self.forms and "name" in attributes:
            self.forms[-1].fields[attributes["name"]] = attributes.get("value", "")


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def query(url: str) -> dict[str, str]:
    """The query parameters of a URL (a callback's code, state, error, iss)."""
    return dict(parse_qsl(urlsplit(url).query))


class OidcBrowser:
    """One browser: its cookies (the provider's session among them) live as long as it does,
    so a second sign-in with the same browser skips the forms already answered."""

    def __init__(self, issuer: str, *, timeout: float = 10, max_steps: int = 20) -> None:
        self.provider = origin(issuer)
        self.session = requests.Session()
        self.timeout = timeout
        self.max_steps = max_steps

    def sign_in(self, authorize_url: str, account: OidcAccount, *, consent: bool = True) -> str:
        """From an authorization URL (the provider's, or any URL that redirects there, such as
        the service's /oidc/{name}/authorize), through the login form with the account's email
        and password and the consent form (allowed, or denied with consent=False), to the URL
        the provider redirects the browser to, which is returned unvisited."""
        url, method, data = authorize_url, "GET", None
        at_provider = False
        for _ in range(self.max_steps):
            if origin(url) == self.provider:
                at_provider = True
            elif at_provider:
                return url
            response = self.session.request(
                method, url, data=data, allow_redirects=False, timeout=self.timeout
            )
            if response.is_redirect:
                url, method, data = urljoin(url, response.headers["Location"]), "GET", None
                continue
            form = self._provider_form(url, response)
            if form.fields.get("prompt") == "login":
                data = {**form.fields, "login": account.email, "password": account.password}
            else:
                data = {**form.fields, "decision": "allow" if consent else "deny"}
            url, method = urljoin(url, form.action), form.method
        raise SignInFailed(f"still at the provider after {self.max_steps} steps: {url}")

    def deny(self, authorize_url: str, account: OidcAccount) -> str:
        """Signs in, then denies consent: the URL returned carries error=access_denied."""
        return self.sign_in(authorize_url, account, consent=False)

    def _provider_form(self, url: str, response: requests.Response) -> Form:
        found = forms(response.text) if origin(url) == self.provider else []
        prompts = [form for form in found if form.fields.get("prompt") in {"login", "consent"}]
        if response.status_code != 200 or len(prompts) != 1:
            raise SignInFailed(f"{response.status_code} at {url}:\n{response.text[:2000]}")
        return prompts[0]

    def get(self, url: str) -> requests.Response:
        """One request with this browser's cookies, redirects not followed (to hand the
        callback URL to the service and read where it sends the browser)."""
        return self.session.get(url, allow_redirects=False, timeout=self.timeout)
