-- rate_limit.lua: requests against their budgets (GCRA), shared by all Serve replicas.
-- KEYS       the budgets of one or more requests, request after request: one budget per
--            limited party (e.g. the client address, the user), a string holding its
--            theoretical arrival time in ms (absent = full budget); each expires once full
-- ARGV[1]    how many consecutive KEYS each request has, comma-separated (e.g. "2,2,1")
-- ARGV[2..]  "<interval_ms>,<tolerance_ms>" for each KEYS[i] (ARGV[i + 1]): interval =
--            1000 / rate, tolerance = (burst - 1) * interval
-- The clock is Redis's own (TIME), so replicas with skewed clocks share one budget. Requests
-- are decided in order, each as if it came alone: all or nothing (when any of its budgets is
-- spent, none of them is charged), and a later request sees what an earlier one charged.
-- Returns a JSON array, one number per request: 0 when allowed, else the ms to wait until
-- every budget of it has room again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local answers, first = {}, 1
for counts in string.gmatch(ARGV[1], '[^,]+') do
  local last = first + tonumber(counts) - 1
  local wait, tats, steps = 0, {}, {}
  for i = first, last do
    local comma = string.find(ARGV[i + 1], ',', 1, true)
    local interval = tonumber(string.sub(ARGV[i + 1], 1, comma - 1))
    local tolerance = tonumber(string.sub(ARGV[i + 1], comma + 1))
    local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or now), now)
    wait = math.max(wait, tat - tolerance - now)
    tats[i], steps[i] = tat, interval
  end
  if wait > 0 then
    answers[#answers + 1] = math.ceil(wait)
  else
    for i = first, last do
      local tat = tats[i] + steps[i]
      redis.call('SET', KEYS[i], tostring(tat), 'PX', math.ceil(tat - now) + 1)
    end
    answers[#answers + 1] = 0
  end
  first = last + 1
end
return cjson.encode(answers)
