-- Shared by the scenario scripts. Each wrk thread has its own Lua state: `setup` numbers
-- the threads, and the data file (one item per line, fields separated by tabs) is read in
-- each thread's `init`.
local common = {}
local thread_count = 0

function common.setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

function common.load(path)
  local items = {}
  for line in io.lines(path) do
    local fields = {}
    for field in string.gmatch(line, "[^\t]+") do
      table.insert(fields, field)
    end
    table.insert(items, fields)
  end
  return items
end

-- Items taken round-robin, from a different starting point in each thread.
function common.cycle(path)
  local items = common.load(path)
  local i = thread_index * 7919
  return function()
    i = i + 1
    return items[(i % #items) + 1]
  end
end

-- This thread's share of items that can be used once each (sessions, refresh tokens).
function common.share(path, threads)
  local mine = {}
  for index, item in ipairs(common.load(path)) do
    if index % threads == thread_index then
      table.insert(mine, item[1])
    end
  end
  return mine
end

-- When a thread has used up its share it stops; this request is never sent.
function common.stop()
  wrk.thread:stop()
  return wrk.format("GET", "/health/live")
end

function common.json_headers(token)
  local headers = { ["Content-Type"] = "application/json" }
  if token then
    headers["Authorization"] = "Bearer " .. token
  end
  return headers
end

return common
