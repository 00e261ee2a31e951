-- PUT /tasks/{id}, cycling over prepared (access token, task id) pairs.
package.path = package.path .. ";scripts/bench/?.lua"
local common = require("common")
setup = common.setup
local items, i
local statuses = { "todo", "in_progress", "done" }
function init(args)
  items = common.load(args[1])
  i = thread_index * 7919
end
function request()
  i = i + 1
  local item = items[(i % #items) + 1]
  local body = string.format('{"title": "updated %d", "status": "%s"}', i, statuses[(i % 3) + 1])
  return wrk.format("PUT", "/tasks/" .. item[2], common.json_headers(item[1]), body)
end
