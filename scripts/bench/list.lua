-- GET /tasks (each prepared user owns 20 tasks), cycling over the users' access tokens.
package.path = package.path .. ";scripts/bench/?.lua"
local common = require("common")
setup = common.setup
local items, i
function init(args)
  items = common.load(args[1])
  i = thread_index * 7919
end
function request()
  i = i + 1
  local item = items[(i % #items) + 1]
  return wrk.format("GET", "/tasks", common.json_headers(item[1]))
end
