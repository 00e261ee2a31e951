"""The session store's Lua scripts: each multi-key change is one atomic script, on keys
that share one user's hash tag (sessions.keys). Session hashes named inside a script are
built from the key prefix passed in ARGV; they share that tag too."""

# KEYS: session. ARGV: jti, now, idle timeout, last-seen write interval.
# 1 when the session is live and holds this jti, else 0 (an expired one is deleted). It
# refreshes last-seen (and with it the idle TTL) at most once per interval, so most
# requests only read.
AUTHENTICATE = """
local v = redis.call('HMGET', KEYS[1], 'jti', 'last_seen_at', 'expires_at')
if not v[1] or v[1] ~= ARGV[1] then return 0 end
local t, idle_s, interval = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local last, abs_end = tonumber(v[2]), tonumber(v[3])
if t >= abs_end or t >= last + idle_s then
  redis.call('DEL', KEYS[1])
  return 0
end
if t - last >= interval then
  redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], math.ceil((math.min(abs_end, t + idle_s) - t) * 1000))
end
return 1
"""

# KEYS: session, spent set, user index.
# ARGV: presented hash, new jti, new hash, now, idle timeout, session id, grace seconds,
#       new rotation salt, new jti's issued-at (whole seconds).
# The current refresh token rotates; the one just rotated away, presented again within the
# grace period (parallel tabs, a retry after a lost response), gets what that rotation
# gave; any other spent token is a replay and ends the session.
ROTATE = """
local v = redis.call('HMGET', KEYS[1], 'refresh_hash', 'expires_at', 'last_seen_at',
  'prev_refresh_hash', 'rotated_at', 'jti', 'jti_issued_at', 'rotation_salt')
if not v[1] then return {'invalid'} end
local now, idle = tonumber(ARGV[4]), tonumber(ARGV[5])
local abs_end = tonumber(v[2])
if now >= abs_end or now >= tonumber(v[3]) + idle then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[6])
  return {'invalid'}
end
if v[1] == ARGV[1] then
  local ttl = math.ceil((math.min(abs_end, now + idle) - now) * 1000)
  redis.call('HSET', KEYS[1], 'jti', ARGV[2], 'refresh_hash', ARGV[3], 'last_seen_at', ARGV[4],
    'prev_refresh_hash', ARGV[1], 'rotated_at', ARGV[4], 'rotation_salt', ARGV[8],
    'jti_issued_at', ARGV[9])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIREAT', KEYS[2], math.ceil(abs_end * 1000))
  return {'rotated'}
end
if v[4] == ARGV[1] and now - tonumber(v[5]) <= tonumber(ARGV[7]) then
  return {'repeated', v[6], v[7], v[8]}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[6])
  return {'reused'}
end
return {'invalid'}
"""

# KEYS: user index, credentials version, new session hash.
# ARGV: session key prefix, spent key prefix, new session id, now, session cap,
#       credentials version the login verified against, ttl ms, absolute end,
#       then the new hash's field/value pairs.
# Refuses ('stale') when the account's credentials changed since the login read them;
# else evicts the least recently used sessions beyond cap - 1 and adds the new one, so
# concurrent logins can never leave more than the cap. Returns the evicted ids.
CREATE = """
local version = tonumber(redis.call('GET', KEYS[2]) or '0')
if version > tonumber(ARGV[6]) then return {'stale'} end
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local alive = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local seen = redis.call('HGET', ARGV[1] .. sid, 'last_seen_at')
  if seen then
    table.insert(alive, {sid, tonumber(seen)})
  else
    redis.call('ZREM', KEYS[1], sid)
  end
end
table.sort(alive, function(a, b) return a[2] < b[2] end)
local result = {'created'}
for i = 1, #alive - tonumber(ARGV[5]) + 1 do
  local sid = alive[i][1]
  redis.call('DEL', ARGV[1] .. sid, ARGV[2] .. sid)
  redis.call('ZREM', KEYS[1], sid)
  table.insert(result, sid)
end
redis.call('HSET', KEYS[3], unpack(ARGV, 9))
redis.call('PEXPIRE', KEYS[3], ARGV[7])
local absolute_end = math.floor(tonumber(ARGV[8]))
redis.call('ZADD', KEYS[1], ARGV[8], ARGV[3])
if redis.call('EXPIRETIME', KEYS[1]) < absolute_end + 1 then
  redis.call('EXPIREAT', KEYS[1], absolute_end + 1)
end
return result
"""

# KEYS: session, spent set, user index. ARGV: session id.
# Ends one session; returns 1 when it was live.
REVOKE_ONE = """
local live = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return live
"""

# KEYS: user index, credentials version.
# ARGV: session key prefix, spent key prefix, session id to keep (or ''),
#       new credentials version (or '' to leave it), its ttl seconds.
# Ends every session of the user but the one kept, in one step, so a session created at
# the same moment is either ended or was created after. Returns how many were live.
REVOKE_ALL = """
local ended = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if sid ~= ARGV[3] then
    ended = ended + redis.call('DEL', ARGV[1] .. sid)
    redis.call('DEL', ARGV[2] .. sid)
    redis.call('ZREM', KEYS[1], sid)
  end
end
if ARGV[4] ~= '' then
  local current = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tonumber(ARGV[4]) > current then
    redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
  end
end
return ended
"""
