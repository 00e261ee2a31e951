-- POST /login, cycling over prepared users (email, password).
package.path = package.path .. ";scripts/bench/?.lua"
local common = require("common")
setup = common.setup
local next_user
function init(args) next_user = common.cycle(args[1]) end
function request()
  local user = next_user()
  local body = string.format('{"email": "%s", "password": "%s"}', user[1], user[2])
  return wrk.format("POST", "/login", common.json_headers(nil), body)
end
