-- Shared by the bench's wrk scripts: thread ids, an optional constant-rate pacer, a JSON report.
--
-- Parameters come from the environment (wrk evaluates `delay` at load time, before init()
-- sees its arguments, so only the environment can switch pacing on or off):
--   BENCH_RATE     offered requests/s over all threads; unset or 0 = as fast as possible
--   BENCH_THREADS  the -t given to wrk (to split the rate between threads)
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]

local M = {}
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

M.rate = tonumber(os.getenv("BENCH_RATE") or "0") or 0
M.threads = tonumber(os.getenv("BENCH_THREADS") or "1") or 1

local threads = {}
function M.setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_id", #threads)
end

function M.read_lines(path)
  local items = {}
  for line in io.lines(path) do
    if #line > 0 then items[#items + 1] = line end
  end
  assert(#items > 0, "no lines in " .. path)
  return items
end

function M.seed_random()
  -- Distinct streams per thread, so two threads do not walk the same id sequence.
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
end

-- Pacing: each thread owns a schedule of slots `interval` ms apart. A connection that becomes
-- free takes the next slot and waits for it, so requests start on schedule whatever the
-- latency, as long as a connection is free. A slot already in the past is moved to now
-- (never bursts to catch up): the achieved rate then falls below the offered one, and the
-- runner reports that instead of hiding it.
local interval, next_slot
late = 0 -- slots that were already past when a connection came to take them (global: read by done)
function M.delay()
  local now = now_ms()
  if interval == nil then
    interval = 1000 / (M.rate / M.threads)
    -- Threads interleave their slots instead of firing in pairs.
    next_slot = now + interval * ((thread_id or 1) - 1) / M.threads
  end
  next_slot = next_slot + interval
  if next_slot < now then
    late = late + 1
    next_slot = now
  end
  return next_slot - now
end

function M.done(summary, latency)
  local e = summary.errors
  local slots_late = 0
  for _, thread in ipairs(threads) do slots_late = slots_late + (thread:get("late") or 0) end
  local p = function(q) return latency:percentile(q) / 1000 end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_s":%.6f,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"late":%d,' ..
    '"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"p999":%.3f,"max":%.3f,"mean":%.3f}}\n',
    summary.requests, summary.duration / 1e6, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, slots_late,
    p(50), p(90), p(99), p(99.9), latency.max / 1000, latency.mean / 1000))
end

-- The wrk hooks both scripts share: setup/done, the pacer when a rate is set, and an init
-- that seeds the random ids; `on_init(ids)` gets the seeded product ids.
function M.install(on_init)
  setup = M.setup
  done = M.done
  if M.rate > 0 then delay = M.delay end
  init = function(_)
    M.seed_random()
    on_init(M.read_lines(os.getenv("BENCH_IDS_FILE")))
  end
end

return M
