-- GET /tasks/{id}, cycling over prepared (access token, task id) pairs.
package.path = package.path .. ";scripts/bench/?.lua"
local common = require("common")
setup = common.setup
local next_item
function init(args) next_item = common.cycle(args[1]) end
function request()
  local item = next_item()
  return wrk.format("GET", "/tasks/" .. item[2], common.json_headers(item[1]))
end
