-- authz.lua — wrk: GET /v1/authz as nginx asks it (X-Original-URI,
-- X-Original-Method), over 5,000 paths below /api/ that the example
-- allows (the rate limit is per caller and path). With BENCH_PATH=/v1/null
-- the same request goes to the null endpoint.
local counter = 0
local path = os.getenv("BENCH_PATH") or "/v1/authz"

request = function()
  counter = counter + 1
  local headers = {
    ["X-Original-URI"] = "/api/items/" .. (counter % 5000) .. "?view=full",
    ["X-Original-Method"] = "GET",
    ["X-Forwarded-Host"] = "shop.example",
    ["X-Forwarded-Proto"] = "https",
    ["Authorization"] = "Bearer bench-token",
  }
  return wrk.format("GET", path, headers, nil)
end
