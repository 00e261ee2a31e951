-- PUT /tasks/{id}, cycling over prepared (access token, task id) pairs.
package.path = package.path .. ";scripts/bench/?.lua"
local common = require("common")
setup = common.setup
local next_item
local statuses = { "todo", "in_progress", "done" }
local n = 0
function init(args) next_item = common.cycle(args[1]) end
function request()
  local item = next_item()
  n = n + 1
  local body = string.format('{"title": "updated %d", "status": "%s"}', n, statuses[(n % 3) + 1])
  return wrk.format("PUT", "/tasks/" .. item[2], common.json_headers(item[1]), body)
end
