-- POST /logout, each request with a fresh session's access token; a thread stops when
-- its share of the prepared sessions is used up.
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
  local token = table.remove(pool)
  if token == nil then
    wrk.thread:stop()
    return wrk.format("GET", "/health/live")
  end
  return wrk.format("POST", "/logout", common.json_headers(token))
end
