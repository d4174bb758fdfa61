-- wrk: GET /v1/users/user{random}/prefetch over the seeded users (USERS env, default 100000).
local users = tonumber(os.getenv("USERS") or "100000")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/users/user" .. math.random(1, users) .. "/prefetch")
end
