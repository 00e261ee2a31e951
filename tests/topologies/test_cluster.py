"""The service on Redis Cluster: six real redis-server nodes on loopback joined by
`redis-cli --cluster create --cluster-replicas 1`. Every feature that touches Redis works
across the shards, every script keeps its keys in one slot, and a killed master is replaced
by its replica without the service being restarted."""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.crc import key_slot

from service.services.passwords import RESET_SUBJECT
from sessions import keys
from sessions.resets import reset_key
from tests.support.api import PASSWORD, Api, unique_email
from tests.support.live_server import LiveServer, StartServer
from tests.support.redis_topology import Cluster, wait_until
from tests.support.smtp_server import SmtpServer

TOKEN = re.compile(r"^ {4}([0-9]+\.[A-Za-z0-9_-]{43,})\r?$", re.MULTILINE)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    topology = Cluster(Path(tmp_path_factory.mktemp("cluster")))
    topology.start()
    yield topology
    topology.stop()


@pytest.fixture(scope="module")
def service(start_server: StartServer, cluster: Cluster, smtp: SmtpServer) -> LiveServer:
    return start_server(
        workers=2,
        REDIS_URL=cluster.url,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_TLS="none",
        PASSWORD_RESET_RATE_LIMIT="1000/hour",
    )


def test_every_key_a_script_touches_is_in_its_users_slot() -> None:
    for user_id in (1, 42, 7_000_001):
        slots = {
            key_slot(key.encode())
            for key in (
                keys.session_key(user_id, "sid"),
                keys.spent_key(user_id, "sid"),
                keys.index_key(user_id),
                keys.credentials_key(user_id),
                keys.revoked_key(user_id),
                reset_key(user_id),
                keys.known_clients_key(user_id),
            )
        }
        assert len(slots) == 1, (user_id, slots)


def test_accounts_sessions_and_tasks_work_across_the_shards(service: LiveServer) -> None:
    api = Api(service.url)
    # Enough users that their keys land on every master.
    users = [api.new_user() for _ in range(6)]
    for tokens in users:
        task = api.create_task(tokens, title="sharded")
        assert api.get(f"/tasks/{task['id']}", headers=tokens.headers).status_code == 200
        patched = api.patch(f"/tasks/{task['id']}", json={"status": "done"}, headers=tokens.headers)
        assert patched.status_code == 200
        refreshed = api.post("/refresh", json={"refresh_token": tokens.refresh_token})
        assert refreshed.status_code == 200, refreshed.text
        headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        listed = api.get("/sessions", headers=headers).json()["items"]
        assert len(listed) == 1
        assert api.post("/logout", headers=headers).status_code == 200
        assert api.get("/tasks", headers=headers).status_code == 401


def test_one_session_is_ended_from_another(service: LiveServer) -> None:
    api = Api(service.url)
    email = api.register()
    first, second = api.login(email), api.login(email)
    sessions = api.get("/sessions", headers=first.headers).json()["items"]
    other = next(item["id"] for item in sessions if not item["current"])
    assert api.delete(f"/sessions/{other}", headers=first.headers).status_code == 200
    assert api.get("/tasks", headers=second.headers).status_code == 401
    assert api.post("/logout/all", headers=first.headers).json() == {"revoked": 1}
    assert api.get("/tasks", headers=first.headers).status_code == 401


def test_rate_limits_count_in_the_cluster(start_server: StartServer, cluster: Cluster) -> None:
    api = Api(start_server(REDIS_URL=cluster.url, REGISTER_RATE_LIMIT="2/hour").url)
    statuses = [
        api.post("/register", json={"email": unique_email(), "password": PASSWORD}).status_code
        for _ in range(3)
    ]
    assert statuses == [201, 201, 429]


def test_a_password_reset_works_across_the_shards(service: LiveServer, smtp: SmtpServer) -> None:
    api = Api(service.url)
    email = api.register()
    tokens = api.login(email)
    assert api.post("/password/forgot", json={"email": email}).status_code == 202
    [message] = smtp.wait_for(email, subject=RESET_SUBJECT)
    match = TOKEN.search(message.get_content())
    assert match
    reset = api.post(
        "/password/reset", json={"token": match[1], "new_password": "a cluster passphrase"}
    )
    assert reset.status_code == 200, reset.text
    assert api.get("/tasks", headers=tokens.headers).status_code == 401
    assert api.login(email, "a cluster passphrase")


def test_the_admin_cli_lists_and_kills_across_every_node(
    service: LiveServer, cluster: Cluster, base_env: dict[str, str]
) -> None:
    api = Api(service.url)
    emails = [api.register() for _ in range(4)]
    sessions = {email: api.login(email) for email in emails}
    env = {**os.environ, **base_env, "REDIS_URL": cluster.url}
    cli = [sys.executable, "-m", "scripts.sessions"]
    listed = subprocess.run(
        [*cli, "list", "--json"], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert set(emails) <= {row["email"] for row in json.loads(listed.stdout)}
    killed = subprocess.run(
        [*cli, "kill", "--user", emails[0]], env=env, capture_output=True, text=True, timeout=60
    )
    assert killed.returncode == 0, killed.stderr
    assert api.get("/tasks", headers=sessions[emails[0]].headers).status_code == 401
    assert api.get("/tasks", headers=sessions[emails[1]].headers).status_code == 200


def test_a_killed_master_is_replaced_and_the_service_recovers_by_itself(
    service: LiveServer, cluster: Cluster
) -> None:
    api = Api(service.url)
    email = api.register()
    tokens = api.login(email)
    user_id = int(api.get("/me", headers=tokens.headers).json()["id"])
    master = cluster.master_of(keys.index_key(user_id))

    # The login was written to the master alone (REDIS_WAIT_REPLICAS=0 here); the session
    # outlives the master only once its replica has it (a fresh replica's first sync takes
    # seconds).
    def acknowledged() -> bool:
        with master.client() as client:
            return int(client.execute_command("WAIT", 1, 500)) >= 1

    wait_until(acknowledged, timeout=30, what="the replica to acknowledge the login")
    master.kill()
    cluster.wait_until_served()
    answered = wait_until(
        lambda: api.get("/tasks", headers=tokens.headers, timeout=10).status_code == 200 or None,
        timeout=20,
        what="the user's requests to be served by the promoted replica",
    )
    assert answered
    # Writes too: a new session lands on the promoted replica, and logging out holds.
    fresh = api.login(email)
    assert api.post("/logout", headers=fresh.headers).status_code == 200
    assert api.get("/tasks", headers=fresh.headers).status_code == 401
