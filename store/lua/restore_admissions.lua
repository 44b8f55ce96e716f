-- restore_admissions.lua: put back admissions the admissions log has and Redis lost (a Redis
-- restart that lost its last writes, or an empty one), at a new room incarnation's activation.
-- KEYS[1] room epoch (fencing counter)   KEYS[2] room hash      KEYS[3] places hash
-- KEYS[4] admitted hash                  KEYS[5] general lane   KEYS[6] presale lane
-- KEYS[7] pre-queue (unused)             KEYS[8] admission log  KEYS[9] entrants (unused)
-- ARGV[1] caller's epoch
-- ARGV[2] JSON object:
--   admissions: [[ticket, admission JSON, member, lane ("presale"|"general")], ...] in order
--   log:        [entry JSON, ...] appended to the admission log (one per admission restored)
--   room:       {field: value} set in the room hash (admitted_total, log_length, log_head)
-- An admission already in the admitted hash is left alone. A restored member still in its
-- lane (the admission step was lost, the joins before it were not) leaves the lane, which
-- moves the lane's head by one: nobody is admitted twice, positions stay consistent.
-- Returns "stale" for a zombie caller, else the number of admissions restored.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
local step = cjson.decode(ARGV[2])
local restored = 0
for _, a in ipairs(step.admissions) do
  if redis.call('HSETNX', KEYS[4], a[1], a[2]) == 1 then
    restored = restored + 1
    local lane, head = KEYS[5], 'head'
    if a[4] == 'presale' then lane, head = KEYS[6], 'presale_head' end
    if redis.call('LREM', lane, 1, a[3]) == 1 then
      redis.call('HINCRBY', KEYS[2], head, 1)
    end
    redis.call('HDEL', KEYS[3], a[1])
  end
end
for _, entry in ipairs(step.log) do redis.call('RPUSH', KEYS[8], entry) end
for field, value in pairs(step.room) do redis.call('HSET', KEYS[2], field, tostring(value)) end
return restored
