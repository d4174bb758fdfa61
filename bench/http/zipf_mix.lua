-- wrk: users chosen by a Zipf law (ZIPF_S, over USERS seeded users, rank 1 = user1),
-- WRITE_PERCENT of requests PUT the user's profile, the rest GET its prefetch.
local users = tonumber(os.getenv("USERS") or "100000")
local s = tonumber(os.getenv("ZIPF_S") or "1.0")
local write_percent = tonumber(os.getenv("WRITE_PERCENT") or "5")
local cdf = {}

init = function()
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  local total = 0
  for k = 1, users do
    total = total + k ^ -s
    cdf[k] = total
  end
  for k = 1, users do cdf[k] = cdf[k] / total end
end

local function zipf_user()
  local x, lo, hi = math.random(), 1, users
  while lo < hi do  -- the first rank whose cumulative share reaches x
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < x then lo = mid + 1 else hi = mid end
  end
  return lo
end

local counter = 0
request = function()
  local u = zipf_user()
  if math.random(1, 100) <= write_percent then
    counter = counter + 1
    return wrk.format("PUT", "/v1/users/user" .. u .. "/profile", {["Content-Type"] = "application/json"},
                      '{"profile":"bench write ' .. counter .. '"}')
  end
  return wrk.format("GET", "/v1/users/user" .. u .. "/prefetch")
end
