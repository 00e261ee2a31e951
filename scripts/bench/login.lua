-- POST /login, cycling over prepared users (email<TAB>password).
package.path = package.path .. ";scripts/bench/?.lua"
local common = require("common")
setup = common.setup
local users, i
function init(args)
  users = common.load(args[1])
  i = thread_index * 7919
end
function request()
  i = i + 1
  local user = users[(i % #users) + 1]
  local body = string.format('{"email": "%s", "password": "%s"}', user[1], user[2])
  return wrk.format("POST", "/login", common.json_headers(nil), body)
end
