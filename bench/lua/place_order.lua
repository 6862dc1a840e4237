-- wrk: POST /v1/orders, one line of quantity 1 for a random seeded product, a fresh
-- Idempotency-Key per request (BENCH_KEY_PREFIX-<thread>-<n>), the customer's BENCH_TOKEN.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
local ids, prefix, auth
local sent = 0

common.install(function(seeded)
  ids = seeded
  prefix = os.getenv("BENCH_KEY_PREFIX") .. "-" .. thread_id .. "-"
  auth = "Bearer " .. os.getenv("BENCH_TOKEN")
end)

function request()
  sent = sent + 1
  local body = '{"lines":[{"product_id":"' .. ids[math.random(#ids)] .. '","quantity":1}]}'
  return wrk.format("POST", "/v1/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = auth,
    ["Idempotency-Key"] = prefix .. sent,
  }, body)
end
