-- wrk: GET /v1/products/{id} for a random id of the seeded set (BENCH_IDS_FILE, one per line).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
local ids

setup = common.setup
done = common.done
if common.rate > 0 then delay = common.delay end

function init(_)
  common.seed_random()
  ids = common.read_lines(os.getenv("BENCH_IDS_FILE"))
end

function request()
  return wrk.format("GET", "/v1/products/" .. ids[math.random(#ids)])
end
