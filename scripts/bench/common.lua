-- Shared by the scenario scripts: each wrk thread reads the prepared data file
-- (one item per line, fields separated by tabs) and takes items round-robin,
-- starting at a different offset per thread.
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

function common.json_headers(token)
  local headers = { ["Content-Type"] = "application/json" }
  if token then
    headers["Authorization"] = "Bearer " .. token
  end
  return headers
end

return common
