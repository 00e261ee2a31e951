"""A real OpenID Provider (the npm package oidc-provider, tests/oidc/provider) as a node
process on a free loopback port, with the clients and accounts a test gives it. Its issuer is
http://127.0.0.1:<port>; it can be stopped and started again on the same port (a provider that
is down), frozen with SIGSTOP (one that accepts connections and never answers), and restarted
with a new signing key. Everything it holds lives in memory: a restart forgets its sessions,
codes and grants. scripts/test.sh installs its packages (npm ci)."""

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import requests
from joserfc.jwk import RSAKey

from tests.support.live_server import ROOT, free_port

PROVIDER_DIR = ROOT / "tests" / "oidc" / "provider"
NODE = shutil.which("node") or "/usr/bin/node"
ACCOUNT_PASSWORD = "provider-password-1"


@dataclass(frozen=True)
class OidcAccount:
    """A user at the provider: the claims it puts in the ID token, and its login form's
    password (the login field takes the email or the sub)."""

    sub: str
    email: str
    email_verified: bool = True
    name: str = "Test User"
    password: str = ACCOUNT_PASSWORD


@dataclass(frozen=True)
class OidcClient:
    """A confidential client registered at the provider (authorization code, PKCE S256)."""

    client_id: str
    client_secret: str
    redirect_uris: Sequence[str]
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] = (
        "client_secret_basic"
    )


def new_signing_key() -> dict[str, Any]:
    """A private RS256 JWK with a kid (its thumbprint)."""
    key = RSAKey.generate_key(
        2048, parameters={"alg": "RS256", "use": "sig"}, private=True, auto_kid=True
    )
    return dict(key.as_dict(private=True))


class OidcProvider:
    """Started on construction; a context manager that stops it on exit."""

    def __init__(
        self,
        *,
        clients: Sequence[OidcClient],
        accounts: Sequence[OidcAccount],
        log_path: Path,
        port: int | None = None,
    ) -> None:
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(
                f"{PROVIDER_DIR / 'node_modules'} is missing: ./scripts/test.sh installs it "
                "(npm ci in tests/oidc/provider)"
            )
        self.clients = list(clients)
        self.accounts = list(accounts)
        self.port = port or free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.config_path = log_path.with_suffix(".json")
        self.signing_key = new_signing_key()
        # Signs the provider's cookies; kept across restarts.
        self._cookie_key = secrets.token_urlsafe(32)
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def kid(self) -> str:
        """The key id of the key that signs ID tokens now."""
        return str(self.signing_key["kid"])

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 30) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        config = {
            "port": self.port,
            "issuer": self.issuer,
            "clients": [
                asdict(client) | {"redirect_uris": list(client.redirect_uris)}
                for client in self.clients
            ],
            "accounts": [asdict(account) for account in self.accounts],
            "jwks": {"keys": [self.signing_key]},
            "cookie_keys": [self._cookie_key],
        }
        self.config_path.write_text(json.dumps(config))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [NODE, "provider.js", str(self.config_path)],
                cwd=PROVIDER_DIR,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"oidc-provider exited early:\n{self.logs()}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"oidc-provider did not start:\n{self.logs()}")

    def _answers(self) -> bool:
        try:
            response = requests.get(self.discovery_url, timeout=1)
        except (requests.ConnectionError, requests.Timeout):
            return False
        return response.status_code == 200 and response.json()["issuer"] == self.issuer

    def stop(self, timeout: float = 10) -> None:
        """Down: the port refuses connections until start()."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        # A frozen process keeps SIGTERM pending until it runs again.
        self.process.send_signal(signal.SIGCONT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, *, rotate_keys: bool = False) -> None:
        """Stopped and started on the same port and issuer; with rotate_keys, a new signing
        key replaces the old one (the JWKS announces only the new kid)."""
        self.stop()
        if rotate_keys:
            self.signing_key = new_signing_key()
        self.start()

    def freeze(self) -> None:
        """Hung: the kernel still accepts connections on the port, nothing answers."""
        assert self.process is not None and self.process.poll() is None, "not running"
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None and self.process.poll() is None, "not running"
        os.kill(self.process.pid, signal.SIGCONT)

    @contextlib.contextmanager
    def hung(self) -> Iterator[None]:
        self.freeze()
        try:
            yield
        finally:
            self.thaw()

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        """The discovery document."""
        response = requests.get(self.discovery_url, timeout=5)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
