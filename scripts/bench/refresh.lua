-- POST /refresh. Each thread keeps a pool of live refresh tokens: a request takes one, its
-- response gives back the rotated one. The pool is larger than the thread's connections,
-- so a token is never used twice (that would be a replay, which revokes the session).
package.path = package.path .. ";scripts/bench/?.lua"
local common = require("common")
setup = common.setup
local pool
function init(args) pool = common.share(args[1], tonumber(args[2])) end
function request()
  local token = table.remove(pool, 1)
  if token == nil then return common.stop() end
  local body = string.format('{"refresh_token": "%s"}', token)
  return wrk.format("POST", "/refresh", common.json_headers(nil), body)
end
function response(status, headers, body)
  local token = string.match(body, '"refresh_token":%s*"([^"]+)"')
  if token then table.insert(pool, token) end
end
