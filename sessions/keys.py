"""Where the session store keeps things in Redis: the one place key names are built.

Every key of a user shares the hash tag `{u:<id>}`, so each multi-key change stays in one
Redis Cluster slot:
- `session:{u:<uid>}:<sid>`   hash: user id, current access `jti` (and when it was issued),
  refresh-token hash, the previous one and when it was rotated away, created / last-seen /
  absolute-expiry times (epoch seconds), ip, user agent. Its TTL is the earlier of the
  absolute end and last use + idle timeout.
- `spent:{u:<uid>}:<sid>`     set of refresh-token hashes already rotated away.
- `sessions:{u:<uid>}`        sorted set of the user's session ids, scored by absolute end.
- `credentials:{u:<uid>}`     the account's credentials version as of its last password
  change, reset or deletion: a login that read an older one starts no session.
- `revoked:{u:<uid>}`         when the user's sessions last changed in a way that must
  survive a failover (a revocation, a rotation, a login): with REDIS_WAIT_REPLICAS it is
  written with every such change, so that a retried one always has a write to wait for.
- `session-owner:<sid>`       the user id of a session, so an admin can find it by id alone
  (no hash tag: it is written and deleted apart from the user's other keys).
- `known-clients:{u:<uid>}`   sorted set of the client addresses the account signed in
  from, scored by the last time (sessions.known_clients).
- `mfa-token:{u:<uid>}:<hash>` hash: a login waiting for its second factor (the password
  was right): the credentials version it checked, the client's device, wrong codes so
  far (sessions.mfa_tokens). Keyed by the SHA-256 of the token, never the token.
"""

SESSION_KEY_PATTERN = "session:*"


def user_tag(user_id: int) -> str:
    return f"{{u:{user_id}}}"


def session_key(user_id: int, session_id: str) -> str:
    return f"session:{user_tag(user_id)}:{session_id}"


def spent_key(user_id: int, session_id: str) -> str:
    return f"spent:{user_tag(user_id)}:{session_id}"


def index_key(user_id: int) -> str:
    return f"sessions:{user_tag(user_id)}"


def credentials_key(user_id: int) -> str:
    return f"credentials:{user_tag(user_id)}"


def revoked_key(user_id: int) -> str:
    return f"revoked:{user_tag(user_id)}"


def owner_key(session_id: str) -> str:
    return f"session-owner:{session_id}"


def known_clients_key(user_id: int) -> str:
    return f"known-clients:{user_tag(user_id)}"


def mfa_token_key(user_id: int, token_hash: str) -> str:
    return f"mfa-token:{user_tag(user_id)}:{token_hash}"
