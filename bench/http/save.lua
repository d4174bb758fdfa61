-- wrk: POST /v1/memories with 1 to 10 items for random seeded users.
local users = tonumber(os.getenv("USERS") or "100000")
local categories = {"FACT", "INTEREST", "GOAL", "EXPERIENCE", "PREFERENCE"}
math.randomseed(os.time())
request = function()
  local n = math.random(1, 10)
  local items = {}
  for i = 1, n do
    local u = math.random(1, users)
    items[i] = string.format('{"user_id":"user%d","category":"%s","key":"bench%d","value":"v%d"}',
                             u, categories[math.random(1, 5)], math.random(1, 50), math.random(1, 1000000))
  end
  return wrk.format("POST", "/v1/memories", {["Content-Type"] = "application/json"},
                    '{"memories":[' .. table.concat(items, ",") .. ']}')
end
