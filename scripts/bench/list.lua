-- GET /tasks (each prepared user owns 20 tasks), cycling over the users' access tokens.
package.path = package.path .. ";scripts/bench/?.lua"
local common = require("common")
setup = common.setup
local next_item
function init(args) next_item = common.cycle(args[1]) end
function request()
  return wrk.format("GET", "/tasks", common.json_headers(next_item()[1]))
end
