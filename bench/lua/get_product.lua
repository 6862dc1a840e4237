-- wrk: GET /v1/products/{id} for a random id of the seeded set (BENCH_IDS_FILE, one per line).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
local ids

common.install(function(seeded) ids = seeded end)

function request()
  return wrk.format("GET", "/v1/products/" .. ids[math.random(#ids)])
end
