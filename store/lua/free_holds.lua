-- free_holds.lua: end live holds of one seat block and give their seats back.
-- KEYS[1] block epoch (fencing counter)      KEYS[2] held bitmap     KEYS[3] sold bitmap (unused)
-- KEYS[4] holds hash (token -> record)       KEYS[5] event avail hash
-- KEYS[6] event user-seats hash              KEYS[7] event bookings hash (unused)
-- KEYS[8] event seat version counter         KEYS[9] event seat change stream
-- ARGV[1] caller's epoch   ARGV[2] block index (field of KEYS[5])
-- ARGV[3] new status: "released" or "expired" (for the holds named in ARGV[5])
-- ARGV[4] now (epoch ms)
-- ARGV[5] JSON array of hold tokens: to release, or that the owner found due to expire
-- ARGV[6] most entries kept in the seat change stream (approximate MAXLEN)
-- A record is "<status>|<json [user, [seat_index...], total, expires_ms, idem_key]>".
-- Only "active" holds are freed, an expiring one only once its stored expiry is <= now: the
-- record, not the caller, decides.
-- Returns "stale" for a zombie caller, else a JSON array of the tokens it freed.
-- The freed seats are published as one "available" change (see publish).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
-- Publish the seat changes once: bump the event's seat version, append one stream entry.
local function publish(indices, status)
  if #indices == 0 then return end
  local version = redis.call('INCR', KEYS[8])
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[6], '*',
             'v', version, 'b', ARGV[2], 's', status, 'i', table.concat(indices, ','))
end

local status, now = ARGV[3], tonumber(ARGV[4])
local tokens = cjson.decode(ARGV[5])
local freed = {}
local changed = {}
for _, token in ipairs(tokens) do
  local record = redis.call('HGET', KEYS[4], token)
  if record then
    local bar = string.find(record, '|', 1, true)
    local body = string.sub(record, bar + 1)
    local rec = cjson.decode(body)
    if string.sub(record, 1, bar - 1) == 'active' and (status ~= 'expired' or rec[4] <= now) then
      for _, s in ipairs(rec[2]) do
        redis.call('SETBIT', KEYS[2], s, 0)
        changed[#changed + 1] = s
      end
      redis.call('HSET', KEYS[4], token, status .. '|' .. body)
      redis.call('HINCRBY', KEYS[5], ARGV[2], #rec[2])
      redis.call('HINCRBY', KEYS[6], rec[1], -#rec[2])
      freed[#freed + 1] = token
    end
  end
end
publish(changed, 'available')
if #freed == 0 then return '[]' end
return cjson.encode(freed)
