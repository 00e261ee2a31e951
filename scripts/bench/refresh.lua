-- POST /refresh. Each thread keeps a pool of live refresh tokens: a request takes one, its
-- response gives back the rotated one. The pool is larger than the thread's connections,
-- so a token is never used twice (that would be a replay, which revokes the session).
package.path = package.path .. ";scripts/bench/?.lua"
local common = require("common")
setup = common.setup
local pool = {}
function init(args)
  local items = common.load(args[1])
  local threads = tonumber(args[2])
  for index, item in ipairs(items) do
    if index % threads == thread_index then
      table.insert(pool, item[1])
    end
  end
end
function request()
  local token = table.remove(pool, 1)
  if token == nil then
    wrk.thread:stop()
    return wrk.format("GET", "/health/live")
  end
  return wrk.format("POST", "/refresh", common.json_headers(nil),
    string.format('{"refresh_token": "%s"}', token))
end
function response(status, headers, body)
  local token = string.match(body, '"refresh_token":%s*"([^"]+)"')
  if token then
    table.insert(pool, token)
  end
end
