"""Admin CLI for sessions. Talks to Redis and PostgreSQL directly (no HTTP); run it where
the service's environment is set, e.g. `docker compose exec api python -m scripts.sessions`.

  list [--user EMAIL] [--json]   live sessions, newest first (a table, or a JSON array)
  kill SESSION_ID...             revoke sessions; exit 1 naming any id not found
                                 (ids made before 2026-11-27 may start with "-": put
                                 `--` before them, `kill -- -AbC...`)
  kill --user EMAIL              revoke every session of one user
  mfa-reset --user EMAIL         turn the user's second factor off (secret and recovery
                                 codes gone) and revoke every session of that user
  mfa-reseal                     seal every TOTP secret again with the first key of
                                 MFA_ENCRYPTION_KEY (after a new key was put first)
"""

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from redis import RedisError
from redis.exceptions import RedisClusterException
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from db import repositories as repo
from db.engine import Database, make_engine
from scripts.startup import describe, postgresql_address, redis_address
from service.audit import audit, sessions_revoked
from service.config import Settings, settings_problems
from service.logging import configure_logging
from sessions import redis_client
from sessions.store import NotReplicated, SessionInfo, SessionStore
from sessions.totp import SecretBox, SecretUnreadable

COLUMNS = (
    "id", "user_id", "email", "auth_methods", "created_at", "last_seen_at", "expires_at", "ip",
    "user_agent",
)  # fmt: skip
# Rows sealed again per transaction by mfa-reseal.
RESEAL_BATCH = 500


class CliError(Exception):
    pass


class Admin:
    def __init__(self, settings: Settings) -> None:
        self.box = SecretBox(settings.mfa_keys)
        self.database = Database(make_engine(settings.database_url, pool_size=1))
        self.redis = redis_client.connect(
            settings.redis_url, max_connections=4, socket_timeout=settings.redis_socket_timeout
        )
        # A kill is a revocation like any other: as durable as the service's own.
        self.store = SessionStore(
            self.redis,
            session_ttl_seconds=settings.session_ttl_seconds,
            idle_timeout_seconds=settings.session_idle_timeout_seconds,
            wait_replicas=settings.redis_wait_replicas,
            wait_timeout_ms=settings.redis_wait_timeout_ms,
        )

    def user_id(self, email: str) -> int:
        with self.database.session() as db:
            user = repo.get_user_by_email(db, email=email)
        if user is None:
            raise CliError(f"no user with email {email}")
        return user.id

    def sessions(self, email: str | None) -> list[dict[str, Any]]:
        infos = (
            self.store.list_for_user(self.user_id(email)) if email else list(self.store.iter_all())
        )
        infos.sort(key=lambda info: info.created_at, reverse=True)
        with self.database.session() as db:
            emails = repo.get_users_by_ids(db, user_ids=sorted({i.user_id for i in infos}))
        return [_row(info, emails.get(info.user_id, "")) for info in infos]

    def kill(self, session_ids: Sequence[str]) -> list[str]:
        """Revoke the sessions found; return the ids that were not."""
        missing = []
        for session_id in session_ids:
            info = self.store.find(session_id)
            if info is None or not self.store.revoke(user_id=info.user_id, session_id=session_id):
                missing.append(session_id)
                continue
            sessions_revoked("admin_kill", user_id=info.user_id, session_id=session_id)
        return missing

    def kill_user(self, email: str) -> int:
        user_id = self.user_id(email)
        revoked = self.store.revoke_all(user_id=user_id)
        sessions_revoked("admin_kill", user_id=user_id, count=revoked)
        return revoked

    def mfa_reset(self, email: str) -> tuple[bool, int]:
        """The user's second factor off (secret and recovery codes gone), then every
        session revoked: whoever holds one may be who made the owner ask. Whether it was
        on, and how many sessions ended."""
        user_id = self.user_id(email)
        with self.database.transaction() as db:
            was_on = repo.delete_second_factor(db, user_id=user_id)
        audit.warning("mfa_reset", user_id=user_id, was_on=was_on)
        revoked = self.store.revoke_all(user_id=user_id)
        sessions_revoked("mfa_reset", user_id=user_id, count=revoked)
        return was_on, revoked

    def mfa_reseal(self) -> tuple[int, list[int]]:
        """Every sealed secret sealed again with the first key; how many rows were, and
        the users whose secret no configured key opens."""
        resealed, unreadable, after = 0, [], 0
        while True:
            with self.database.session() as db:
                rows = repo.second_factors_page(db, after=after, limit=RESEAL_BATCH)
            if not rows:
                break
            for row in rows:
                after = row.user_id
                try:
                    new = tuple(
                        None if sealed is None else self.box.reseal(sealed)
                        for sealed in (row.secret_sealed, row.pending_sealed)
                    )
                except SecretUnreadable:
                    unreadable.append(row.user_id)
                    continue
                with self.database.session() as db:
                    # A row a request changed meanwhile was sealed with the first key.
                    resealed += repo.reseal_second_factor(
                        db,
                        user_id=row.user_id,
                        old=(row.secret_sealed, row.pending_sealed),
                        new=(new[0], new[1]),
                    )
        audit.info("mfa_resealed", count=resealed, unreadable=len(unreadable))
        return resealed, unreadable

    def close(self) -> None:
        self.database.dispose()
        self.redis.close()


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


def _row(info: SessionInfo, email: str) -> dict[str, Any]:
    return {
        "id": info.id,
        "user_id": info.user_id,
        "email": email,
        "auth_methods": " ".join(info.auth_methods),
        "created_at": _iso(info.created_at),
        "last_seen_at": _iso(info.last_seen_at),
        "expires_at": _iso(info.expires_at),
        "ip": info.ip,
        "user_agent": info.user_agent,
    }


# C0 and C1 control characters and DEL: a User-Agent stored by an older version may hold
# any, and a terminal would act on them (colours, cursor moves, a forged line).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def _printable(value: object) -> str:
    return _CONTROLS.sub(lambda match: f"\\x{ord(match[0]):02x}", str(value))


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no live sessions"
    cells = [[_printable(row[column]) for column in COLUMNS] for row in rows]
    headers = [column.upper() for column in COLUMNS]
    widths = [max(len(value) for value in column) for column in zip(headers, *cells, strict=True)]
    lines = [headers, *cells]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.sessions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Revocation takes effect on the next request, on every worker and replica. "
        "Settings come from the same environment variables as the service "
        "(DATABASE_URL, REDIS_URL, SESSION_*).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    list_parser = commands.add_parser("list", help="list live sessions, newest first")
    list_parser.add_argument("--user", metavar="EMAIL", help="only this user's sessions")
    list_parser.add_argument("--json", action="store_true", help="print a JSON array")
    kill_parser = commands.add_parser(
        "kill", help="revoke sessions by id, or every session of a user"
    )
    kill_parser.add_argument(
        "session_ids", nargs="*", metavar="SESSION_ID", help="ids as `list` shows them"
    )
    kill_parser.add_argument("--user", metavar="EMAIL", help="revoke all of this user's sessions")
    reset_parser = commands.add_parser(
        "mfa-reset", help="turn a user's second factor off and revoke every session of theirs"
    )
    reset_parser.add_argument("--user", metavar="EMAIL", required=True, help="the account")
    commands.add_parser(
        "mfa-reseal", help="seal every TOTP secret again with the first MFA_ENCRYPTION_KEY"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "kill" and bool(args.session_ids) == bool(args.user):
        parser.error("kill takes SESSION_ID... or --user EMAIL (one of them)")
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: invalid settings: {settings_problems(error)}", file=sys.stderr)
        return 2
    # Logs (audit events) go to stderr; stdout carries the command's output.
    configure_logging(level=settings.log_level, log_format=settings.log_format, stream=sys.stderr)
    admin: Admin | None = None
    try:
        # Inside: a Redis Cluster client asks its nodes for the slots as it is made.
        admin = Admin(settings)
        return _run(admin, args)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except NotReplicated as error:
        # REDIS_WAIT_REPLICAS: the revocation holds on the master but is not yet safe
        # from a failover. Running the same command again is safe.
        print(f"error: not confirmed by the replicas ({error}); run it again", file=sys.stderr)
        return 2
    # One line that names the dependency that failed (mostly: did not answer), not a
    # traceback: nothing was changed that the same command cannot finish when run again.
    except (RedisError, RedisClusterException) as error:
        where = redis_address(settings.redis_url)
        print(f"error: Redis at {where}: {describe(error)}", file=sys.stderr)
        return 1
    except (DBAPIError, PoolTimeoutError) as error:
        where = postgresql_address(settings.database_url)
        print(f"error: PostgreSQL at {where}: {describe(error)}", file=sys.stderr)
        return 1
    finally:
        if admin is not None:
            admin.close()


def _run(admin: Admin, args: argparse.Namespace) -> int:
    if args.command == "mfa-reset":
        was_on, revoked = admin.mfa_reset(args.user)
        state = "turned off" if was_on else "was not on"
        print(f"second factor of {args.user} {state}; revoked {revoked} session(s)")
        return 0
    if args.command == "mfa-reseal":
        resealed, unreadable = admin.mfa_reseal()
        print(f"sealed {resealed} secret(s) again with the first key")
        if unreadable:
            ids = " ".join(str(user_id) for user_id in unreadable)
            print(f"error: no configured key opens the secret of user(s) {ids}", file=sys.stderr)
            return 1
        return 0
    if args.command == "list":
        rows = admin.sessions(args.user)
        print(json.dumps(rows, indent=2) if args.json else format_table(rows))
        return 0
    if args.user:
        print(f"revoked {admin.kill_user(args.user)} session(s) of {args.user}")
        return 0
    missing = admin.kill(args.session_ids)
    print(f"revoked {len(args.session_ids) - len(missing)} session(s)")
    if missing:
        print(f"error: not found: {' '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
