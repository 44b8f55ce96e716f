-- rate_limit.lua: one request against every given budget (GCRA), shared by all Serve replicas.
-- KEYS[1..n] one budget per limited party (e.g. the client address, the user): a string holding
--            its theoretical arrival time in ms (absent = full budget); each expires once full
-- ARGV[1..n] "<interval_ms>,<tolerance_ms>" for KEYS[i]: interval = 1000 / rate,
--            tolerance = (burst - 1) * interval
-- The clock is Redis's own (TIME), so replicas with skewed clocks share one budget.
-- All or nothing: when any budget is spent, none is charged.
-- Returns 0 when allowed, else the ms to wait until every budget has room again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait, tats, steps = 0, {}, {}
for i, key in ipairs(KEYS) do
  local comma = string.find(ARGV[i], ',', 1, true)
  local interval = tonumber(string.sub(ARGV[i], 1, comma - 1))
  local tolerance = tonumber(string.sub(ARGV[i], comma + 1))
  local tat = math.max(tonumber(redis.call('GET', key) or now), now)
  wait = math.max(wait, tat - tolerance - now)
  tats[i], steps[i] = tat, interval
end
if wait > 0 then return math.ceil(wait) end
for i, key in ipairs(KEYS) do
  local tat = tats[i] + steps[i]
  redis.call('SET', key, tostring(tat), 'PX', math.ceil(tat - now) + 1)
end
return 0
