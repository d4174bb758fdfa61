-- wrk: GET the prefetch of every seeded user in turn (user1 .. userUSERS, then again), the
-- THREADS wrk threads (as -t) taking every THREADS-th user each. Warms the service's
-- cache and PostgreSQL's buffers alike before a measurement; bench/cache.py stops it once
-- the service has answered USERS prefetches.
local users = tonumber(os.getenv("USERS") or "100000")
local stride = tonumber(os.getenv("THREADS") or "2")
local started = 0

setup = function(thread)
  thread:set("offset", started)
  started = started + 1
end

local sent = 0
request = function()
  local id = (offset + sent * stride) % users + 1
  sent = sent + 1
  return wrk.format("GET", "/v1/users/user" .. id .. "/prefetch")
end
