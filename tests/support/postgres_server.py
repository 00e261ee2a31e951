"""A private PostgreSQL cluster (initdb + postgres of the machine's own binaries) on its
own port, which the tests may freeze with SIGSTOP (every process of the cluster, as
`docker pause` would) and thaw again."""

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2

from tests.support.live_server import free_port


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return found


def postgres_bin_dir() -> str:
    """Where the machine's PostgreSQL server binaries are."""
    return str(Path(_binary("postgres")).resolve().parent)


def _as_postgres() -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class PostgresServer:
    def __init__(self) -> None:
        self.port = free_port()
        # Not under pytest's tmp_path: the postgres user must be able to reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="tasks-test-postgres-"))
        self.data = self.directory / "data"
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        if not self.data.exists():
            subprocess.run(
                [*_as_postgres(), _binary("initdb"), "-D", str(self.data), "-U", "postgres",
                 "--auth=trust", "-E", "UTF8", "--no-sync"],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        log = open(self.directory / "postgres.log", "ab")  # noqa: SIM115 (the server's)
        self.process = subprocess.Popen(
            [*_as_postgres(), _binary("postgres"), "-D", str(self.data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.directory), "-c", "fsync=off"],
            stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg2.OperationalError):
                psycopg2.connect(
                    host="127.0.0.1", port=self.port, user="postgres", connect_timeout=1
                ).close()
                return
            if self.process.poll() is not None:
                raise RuntimeError((self.directory / "postgres.log").read_text())
            time.sleep(0.1)
        raise RuntimeError("the private PostgreSQL did not start")

    def migrated_database(self, name: str = "tasks") -> str:
        """A new database on this server, migrated to head; its URL."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        from tests.support.databases import migrate

        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = make_url(self.url).set(database=name).render_as_string(hide_password=False)
        migrate(url, "upgrade", "head")
        return url

    def _processes(self) -> list[int]:
        """The launcher, the postmaster and every process the postmaster started (each
        backend runs in a session of its own, so a process group does not reach them)."""
        assert self.process is not None
        found, parents = [self.process.pid], {self.process.pid}
        grew = True
        while grew:
            grew = False
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) in found:
                    continue
                with contextlib.suppress(OSError):
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    if parent in parents:
                        found.append(int(entry.name))
                        parents.add(int(entry.name))
                        grew = True
        return found

    def _signal_all(self, signum: int) -> None:
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def freeze(self) -> None:
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server; its data stays, so `start` brings it back."""
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self._signal_all(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self._signal_all(signal.SIGKILL)
                self.process.wait()

    def close(self) -> None:
        """Stop the server and remove its data."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
