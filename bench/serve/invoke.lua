-- invoke.lua — wrk: POST /v1/invoke, a tool call of examples/requests.jsonl
-- that the example gateway allows, from a different caller each time (the
-- rate limit is per caller and tool: one caller would be denied after 3).
-- With BENCH_PATH=/v1/null the same bytes go to the null endpoint.
local counter = 0
local path = os.getenv("BENCH_PATH") or "/v1/invoke"
local headers = { ["Content-Type"] = "application/json" }

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

request = function()
  counter = counter + 1
  local body = '{"hook":"cmf.tool_pre_invoke","extensions":{"security":{"subject":{"id":"bench-'
    .. (id or "t") .. "-" .. (counter % 50000) .. '","type":"user"}},"request":{"request_id":"r-'
    .. counter .. '"}},"payload":{"role":"assistant","content":[{"content_type":"tool_call",'
    .. '"content":{"tool_call_id":"call-1","name":"search_docs","arguments":{"query":"quarterly '
    .. 'report for jane.doe@example.com","limit":5}}}]}}'
  return wrk.format("POST", path, headers, body)
end
