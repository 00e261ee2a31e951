-- POST /logout, each request with a fresh session's access token.
package.path = package.path .. ";scripts/bench/?.lua"
local common = require("common")
setup = common.setup
local pool
function init(args) pool = common.share(args[1], tonumber(args[2])) end
function request()
  local token = table.remove(pool)
  if token == nil then return common.stop() end
  return wrk.format("POST", "/logout", common.json_headers(token))
end
