-- free_holds.lua: end live holds of one seat block and give their seats back.
-- KEYS[1] block epoch (fencing counter)      KEYS[2] held bitmap     KEYS[3] sold bitmap (unused)
-- KEYS[4] holds hash (token -> record)       KEYS[5] expiry zset     KEYS[6] event avail hash
-- KEYS[7] event user-seats hash              KEYS[8] event bookings hash (unused)
-- KEYS[9] event seat version counter         KEYS[10] event seat change stream
-- ARGV[1] caller's epoch   ARGV[2] block index (field of KEYS[6])
-- ARGV[3] new status: "released" (the holds named in ARGV[6]) or "expired" (holds due by now)
-- ARGV[4] now (epoch s)    ARGV[5] most holds to expire in one call
-- ARGV[6] JSON array of hold tokens to release (ignored when expiring)
-- ARGV[7] most entries kept in the seat change stream (approximate MAXLEN)
-- A record is "<status>|<json [user, [seat_index...], total, expires_ms, idem_key]>".
-- Only "active" holds are freed (an expiring one only once its expiry has passed).
-- Returns "stale" for a zombie caller, else a JSON array of the tokens it freed.
-- The freed seats are published as one "available" change (see publish).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
-- Publish the seat changes once: bump the event's seat version, append one stream entry.
local function publish(indices, status)
  if #indices == 0 then return end
  local version = redis.call('INCR', KEYS[9])
  redis.call('XADD', KEYS[10], 'MAXLEN', '~', ARGV[7], '*',
             'v', version, 'b', ARGV[2], 's', status, 'i', table.concat(indices, ','))
end

local status, now = ARGV[3], tonumber(ARGV[4])
local tokens
if status == 'expired' then
  tokens = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
else
  tokens = cjson.decode(ARGV[6])
end
local freed = {}
local changed = {}
for _, token in ipairs(tokens) do
  local record = redis.call('HGET', KEYS[4], token)
  if record then
    local bar = string.find(record, '|', 1, true)
    local body = string.sub(record, bar + 1)
    local rec = cjson.decode(body)
    if string.sub(record, 1, bar - 1) == 'active' and (status ~= 'expired' or rec[4] <= now * 1000) then
      for _, s in ipairs(rec[2]) do
        redis.call('SETBIT', KEYS[2], s, 0)
        changed[#changed + 1] = s
      end
      redis.call('HSET', KEYS[4], token, status .. '|' .. body)
      redis.call('HINCRBY', KEYS[6], ARGV[2], #rec[2])
      redis.call('HINCRBY', KEYS[7], rec[1], -#rec[2])
      redis.call('ZREM', KEYS[5], token)
      freed[#freed + 1] = token
    elseif string.sub(record, 1, bar - 1) ~= 'active' then
      redis.call('ZREM', KEYS[5], token)
    end
  else
    redis.call('ZREM', KEYS[5], token)
  end
end
publish(changed, 'available')
if #freed == 0 then return '[]' end
return cjson.encode(freed)
