-- wrk script: one operation of the CMS API, or a mix of all of them.
-- Arguments (after --): operation [count] [read_share] [threads] [ids_file]
--   operation: get | list | post | put | delete | mixed
--   count: customers pre-filled with tests/support/data.py ids (default 1000)
--   read_share: for mixed, the share of reads (default 0.8); writes are POST, PUT and DELETE
--   threads: wrk's -t, to share out ids_file (a thread may start before the next is set up)
--   ids_file: for delete, ids to delete, one a line, shared out among the threads; a thread
--     that has deleted all of its share reads instead (its 200s are not deletes)
-- In mixed, DELETE removes customers this thread created (captured from 201 bodies), so every
-- request of a correct server succeeds. done() prints one JSON line: statuses, latencies.

local operation, count, read_share = "get", 1000, 0.8
local created = {}
local thread_count = 0
statuses = {}  -- global: done() reads it from each thread
local threads = {}
local body = '{"name":"Load Test","email":"load@example.com","phone":"+1-555-0000","address":"1 Bench St","company":"wrk"}'
local update = '{"status":"inactive","phone":"+1-555-0001"}'
local json_headers = { ["Content-Type"] = "application/json" }

function setup(thread)
  thread:set("index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  operation = args[1] or operation
  count = tonumber(args[2] or count)
  read_share = tonumber(args[3] or read_share)
  statuses = {}
  math.randomseed(os.time() + math.floor(os.clock() * 1000000) + (index or 0))
  local total = tonumber(args[4] or 1)
  if args[5] then
    local n = 0
    for line in io.lines(args[5]) do
      if n % total == index then table.insert(created, line) end
      n = n + 1
    end
  end
end

local function some_id()
  return string.format("00000000-0000-4000-8000-%012d", math.random(0, count - 1))
end

local function delete_created()
  local id = table.remove(created)
  if id == nil then
    if operation == "delete" then return wrk.format("GET", "/api/customers/" .. some_id()) end
    return wrk.format("POST", "/api/customers/", json_headers, body)
  end
  return wrk.format("DELETE", "/api/customers/" .. id)
end

function request()
  local op = operation
  if op == "mixed" then
    local r = math.random()
    if r < read_share * 0.95 then op = "get"
    elseif r < read_share then op = "list"
    else op = ({ "post", "put", "delete" })[math.random(1, 3)] end
  end
  if op == "get" then return wrk.format("GET", "/api/customers/" .. some_id()) end
  if op == "list" then return wrk.format("GET", "/api/customers/") end
  if op == "post" then return wrk.format("POST", "/api/customers/", json_headers, body) end
  if op == "put" then return wrk.format("PUT", "/api/customers/" .. some_id(), json_headers, update) end
  return delete_created()
end

function response(status, headers, response_body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 and operation == "mixed" then
    local id = string.match(response_body, '"id":"([%x%-]+)"')
    if id then table.insert(created, id) end
  end
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(merged) do table.insert(parts, string.format('"%d": %d', status, n)) end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status, table.concat(parts, ", ")))
end
