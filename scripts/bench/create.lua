-- POST /tasks, cycling over the prepared users' access tokens.
package.path = package.path .. ";scripts/bench/?.lua"
local common = require("common")
setup = common.setup
local next_item
local body = '{"title": "benchmark task", "description": "created by wrk", "status": "todo"}'
function init(args) next_item = common.cycle(args[1]) end
function request()
  return wrk.format("POST", "/tasks", common.json_headers(next_item()[1]), body)
end
