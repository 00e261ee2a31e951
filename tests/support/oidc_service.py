"""The service configured to sign in with test OpenID Providers (tests/support/oidc_provider),
and the browser's side of its flows: from /oidc/{name}/authorize (or a linking URL) through
the provider's forms to the service's callback, and where the service sends the browser."""

import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from tests.support.api import Api, Tokens
from tests.support.live_server import LiveServer, StartServer, free_port
from tests.support.oidc_browser import OidcBrowser, query
from tests.support.oidc_provider import OidcAccount, OidcClient, OidcProvider

RETURN_URL = "https://app.example.com/signed-in?from=oidc"
METRICS_TOKEN = "oidc-metrics-token-0123456789"


def account(label: str, *, email_verified: bool = True, email: str | None = None) -> OidcAccount:
    """A user at a provider, with a subject and an address no other test uses."""
    tag = uuid.uuid4().hex[:10]
    return OidcAccount(
        f"{label}-{tag}", email or f"{label}-{tag}@example.com", email_verified=email_verified
    )


@dataclass
class Site:
    """A live service and the providers it trusts, by name."""

    server: LiveServer
    providers: dict[str, OidcProvider]

    @property
    def api(self) -> Api:
        return Api(self.server.url)

    def me(self, tokens: Tokens) -> dict[str, object]:
        response = self.api.get("/me", headers=tokens.headers)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    def stop(self) -> None:
        """Now rather than with the test session: PostgreSQL's connections are shared."""
        self.server.stop()
        for provider in self.providers.values():
            provider.stop()

    def browser(self, name: str) -> OidcBrowser:
        return OidcBrowser(self.providers[name].issuer)

    def to_callback(
        self,
        name: str,
        who: OidcAccount,
        *,
        browser: OidcBrowser | None = None,
        start: str | None = None,
        consent: bool = True,
    ) -> tuple[OidcBrowser, str]:
        """Signs in at the provider, from the service's authorize URL (or `start`), and
        stops at the redirect to the service's callback: the browser and that URL."""
        browser = browser or self.browser(name)
        start = start or f"{self.server.url}/oidc/{name}/authorize"
        callback = browser.sign_in(start, who, consent=consent)
        assert callback.startswith(f"{self.server.url}/oidc/{name}/callback?"), callback
        return browser, callback

    def land(self, browser: OidcBrowser, callback: str) -> dict[str, str]:
        """The browser visits the callback; the query of where the service sends it, which
        is always OIDC_RETURN_URL."""
        response = browser.get(callback)
        assert response.status_code == 302, response.text
        location = response.headers["Location"]
        assert location.startswith(RETURN_URL.split("?")[0] + "?"), location
        params = query(location)
        assert params.pop("from") == "oidc"  # OIDC_RETURN_URL's own query is kept
        return params

    def sign_in(self, name: str, who: OidcAccount, **options: object) -> dict[str, str]:
        browser, callback = self.to_callback(name, who, **options)  # type: ignore[arg-type]
        return self.land(browser, callback)

    def exchange(self, login_code: str) -> requests.Response:
        return self.api.post("/oidc/token", json={"login_code": login_code})

    def session(self, name: str, who: OidcAccount) -> Tokens:
        """A session through the provider: sign in, then trade the login code."""
        landed = self.sign_in(name, who)
        assert set(landed) == {"login_code"}, landed
        response = self.exchange(landed["login_code"])
        assert response.status_code == 200, response.text
        body = response.json()
        return Tokens(body["access_token"], body["refresh_token"])

    def begin_link(self, name: str, who: OidcAccount, tokens: Tokens) -> dict[str, str]:
        """The account of `tokens` begins a link; `who` signs in at `name` from its URL:
        where the browser lands (a `link_code`, or an `error`)."""
        response = self.api.post(f"/me/identities/{name}", headers=tokens.headers)
        assert response.status_code == 200, response.text
        authorize_url = response.json()["authorize_url"]
        assert authorize_url.startswith(self.providers[name].issuer)
        browser, callback = self.to_callback(name, who, start=authorize_url)
        return self.land(browser, callback)

    def confirm_link(self, link_code: str, tokens: Tokens) -> requests.Response:
        return self.api.post(
            "/me/identities", json={"link_code": link_code}, headers=tokens.headers
        )

    def link(self, name: str, who: OidcAccount, tokens: Tokens) -> dict[str, str]:
        """Links `who`'s identity at `name` to the account of `tokens`, as its front end
        would: `{"linked": name}`, or where the browser landed when it brought no code."""
        landed = self.begin_link(name, who, tokens)
        if set(landed) != {"link_code"}:
            return landed
        response = self.confirm_link(landed["link_code"], tokens)
        assert response.status_code == 201, response.text
        assert response.json()["subject"] == who.sub
        return {"linked": response.json()["provider"]}

    def metric(self, name: str, labels: str) -> float:
        text = self.api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        for line in text.splitlines():
            if line.startswith(f"{name}{{") and all(
                f"{part}" in line for part in labels.split(",")
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def start_site(
    start_server: StartServer,
    tmp_path: Path,
    accounts: list[OidcAccount],
    *,
    names: tuple[str, ...] = ("corp",),
    **env: str,
) -> Site:
    """Providers named `names`, each knowing `accounts`, then a service trusting them: its
    port is chosen first, since each provider must know its redirect URI beforehand."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    providers = {}
    variables: dict[str, str] = {}
    for name in names:
        client = OidcClient(
            f"tasks-{name}", f"{name}-secret-0123456789", [f"{base}/oidc/{name}/callback"]
        )
        providers[name] = OidcProvider(
            clients=[client], accounts=accounts, log_path=tmp_path / f"provider-{name}.log"
        )
        prefix = f"OIDC_{name.upper()}_"
        variables |= {
            prefix + "ISSUER": providers[name].issuer,
            prefix + "CLIENT_ID": client.client_id,
            prefix + "CLIENT_SECRET": client.client_secret,
        }
    try:
        server = start_server(
            port=port,
            OIDC_PROVIDERS=",".join(names),
            PUBLIC_BASE_URL=base,
            OIDC_RETURN_URL=RETURN_URL,
            OIDC_TIMEOUT_SECONDS="1",
            METRICS_TOKEN=METRICS_TOKEN,
            **variables,
            **env,
        )
    except BaseException:
        for provider in providers.values():  # a service that did not start leaves none behind
            provider.stop()
        raise
    assert urlsplit(server.url).port == port
    return Site(server, providers)
