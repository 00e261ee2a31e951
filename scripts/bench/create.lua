-- POST /tasks, cycling over the prepared users' access tokens.
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
  local body = '{"title": "benchmark task", "description": "created by wrk", "status": "todo"}'
  return wrk.format("POST", "/tasks", common.json_headers(item[1]), body)
end
