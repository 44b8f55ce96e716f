-- admit.lua: admit the heads of the lanes, append them to the admission log, update
-- admission records, and publish the room's numbers; all in one atomic step.
-- KEYS[1] room epoch (fencing counter)   KEYS[2] room hash      KEYS[3] places hash
-- KEYS[4] admitted hash                  KEYS[5] general lane   KEYS[6] presale lane
-- KEYS[7] pre-queue (unused)             KEYS[8] admission log  KEYS[9] entrants (unused)
-- ARGV[1] caller's epoch
-- ARGV[2] JSON object:
--   presale: members expected at the head of the presale lane (popped, in order)
--   general: members expected at the head of the general lane (popped, in order)
--   records: [[ticket, admission JSON], ...] to set in the admitted hash
--   log:     [entry JSON, ...] appended to the admission log
--   room:    {field: value} set in the room hash (heads, rate, flags)
-- The heads must be exactly the expected members (the room read them just before, as the
-- only writer): a mismatch returns "conflict" and changes nothing.
-- Returns "stale" for a zombie caller, "conflict", or "ok".
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
local step = cjson.decode(ARGV[2])
local lanes = {{KEYS[6], step.presale}, {KEYS[5], step.general}}
for _, lane in ipairs(lanes) do
  local n = #lane[2]
  if n > 0 then
    local head = redis.call('LRANGE', lane[1], 0, n - 1)
    for i = 1, n do
      if head[i] ~= lane[2][i] then return 'conflict' end
    end
  end
end
for _, lane in ipairs(lanes) do
  local n = #lane[2]
  if n > 0 then
    redis.call('LTRIM', lane[1], n, -1)
    for i = 1, n do
      local member = lane[2][i]
      redis.call('HDEL', KEYS[3], string.sub(member, 1, string.find(member, '|', 1, true) - 1))
    end
  end
end
for _, record in ipairs(step.records) do redis.call('HSET', KEYS[4], record[1], record[2]) end
for _, entry in ipairs(step.log) do redis.call('RPUSH', KEYS[8], entry) end
for field, value in pairs(step.room) do redis.call('HSET', KEYS[2], field, tostring(value)) end
return 'ok'
