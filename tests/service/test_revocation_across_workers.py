"""Revocation is seen by every worker on the very next request."""

import requests

from tests.support.api import Api
from tests.support.live_server import StartServer


def test_logout_revokes_token_on_every_worker(start_server: StartServer) -> None:
    server = start_server(workers=2)
    api = Api(server.url)
    email = api.register()
    for _ in range(25):
        tokens = api.login(email)
        assert api.post("/logout", headers=tokens.headers).status_code == 200
        # Fresh connections, so these land on both workers.
        for _ in range(4):
            response = requests.get(
                f"{server.url}/tasks",
                headers={**tokens.headers, "Connection": "close"},
                timeout=30,
            )
            assert response.status_code == 401


def test_admin_style_revocation_of_all_sessions_reaches_every_worker(
    start_server: StartServer,
) -> None:
    server = start_server(workers=2)
    api = Api(server.url)
    email = api.register()
    for _ in range(10):
        tokens = [api.login(email) for _ in range(3)]
        assert api.post("/logout/all", headers=tokens[0].headers).json()["revoked"] == 3
        for pair in tokens:
            response = requests.get(
                f"{server.url}/sessions",
                headers={**pair.headers, "Connection": "close"},
                timeout=30,
            )
            assert response.status_code == 401
