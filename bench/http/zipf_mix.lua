-- wrk: users chosen by a Zipf law (ZIPF_S, over USERS seeded users, rank 1 = user1),
-- WRITE_PERCENT of requests PUT the user's profile, the rest GET its prefetch.
--
-- wrk shares the machine's cores with the service, so each request must cost it little:
-- a user is drawn in O(1) by Walker's alias method (exact, unlike a quantized inverse
-- CDF: the tail users keep their probabilities), and each user's GET is formatted once.
local users = tonumber(os.getenv("USERS") or "100000")
local s = tonumber(os.getenv("ZIPF_S") or "1.0")
local write_percent = tonumber(os.getenv("WRITE_PERCENT") or "5")
local keep, alias = {}, {}  -- column k: keep k with probability keep[k], else alias[k]
local gets = {}

init = function()
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  local total = 0
  for k = 1, users do total = total + k ^ -s end
  -- Vose's construction: scaled weights below 1 are topped up by one weight above 1.
  local small, large = {}, {}
  for k = 1, users do
    keep[k] = users * k ^ -s / total
    if keep[k] < 1 then small[#small + 1] = k else large[#large + 1] = k end
  end
  while #small > 0 and #large > 0 do
    local lo, hi = small[#small], large[#large]
    small[#small] = nil
    alias[lo] = hi
    keep[hi] = keep[hi] + keep[lo] - 1
    if keep[hi] < 1 then
      large[#large] = nil
      small[#small + 1] = hi
    end
  end
  for _, k in ipairs(small) do keep[k] = 1 end  -- rounding leftovers
  for _, k in ipairs(large) do keep[k] = 1 end
end

local function zipf_user()
  local k = math.random(1, users)
  if math.random() < keep[k] then return k end
  return alias[k]
end

local counter = 0
request = function()
  local u = zipf_user()
  if math.random(1, 100) <= write_percent then
    counter = counter + 1
    return wrk.format("PUT", "/v1/users/user" .. u .. "/profile", {["Content-Type"] = "application/json"},
                      '{"profile":"bench write ' .. counter .. '"}')
  end
  local get = gets[u]
  if not get then
    get = wrk.format("GET", "/v1/users/user" .. u .. "/prefetch")
    gets[u] = get
  end
  return get
end
