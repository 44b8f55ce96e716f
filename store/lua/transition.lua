-- transition.lua: move one hold of a seat block to a new status, optionally selling its seats.
-- KEYS[1] block epoch (fencing counter)      KEYS[2] held bitmap     KEYS[3] sold bitmap
-- KEYS[4] holds hash (token -> record)       KEYS[5] event avail hash
-- KEYS[6] event user-seats hash              KEYS[7] event bookings hash
-- KEYS[8] event seat version counter         KEYS[9] event seat change stream
-- ARGV[1] caller's epoch   ARGV[2] block index (field of KEYS[5])   ARGV[3] hold token
-- ARGV[4] expected current status ("" accepts any, including no record: used by recovery)
-- ARGV[5] new record "<status>|<json [user, [seat_index...], total, expires_ms, key]>"
-- ARGV[6] "sell" to mark the record's seats sold and store ARGV[7] as the booking, else "none"
-- ARGV[7] booking JSON (with "sell")
-- ARGV[8] most entries kept in the seat change stream (approximate MAXLEN)
-- Returns "stale" for a zombie caller, "state:<status>" when the hold is not in the expected
-- status ("state:" when there is no record), else "ok". Sold seats are published as one
-- "sold" change (see publish); other transitions change no seat and publish nothing.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
-- Publish the seat changes once: bump the event's seat version, append one stream entry.
local function publish(indices, status)
  if #indices == 0 then return end
  local version = redis.call('INCR', KEYS[8])
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[8], '*',
             'v', version, 'b', ARGV[2], 's', status, 'i', table.concat(indices, ','))
end

local token = ARGV[3]
local current = redis.call('HGET', KEYS[4], token)
local status = ''
if current then status = string.sub(current, 1, string.find(current, '|', 1, true) - 1) end
if ARGV[4] ~= '' and status ~= ARGV[4] then return 'state:' .. status end
local new = ARGV[5]
redis.call('HSET', KEYS[4], token, new)
if ARGV[6] == 'sell' then
  local rec = cjson.decode(string.sub(new, string.find(new, '|', 1, true) + 1))
  local fresh = 0
  local changed = {}
  for _, s in ipairs(rec[2]) do
    local was_held = redis.call('SETBIT', KEYS[2], s, 0)
    local was_sold = redis.call('SETBIT', KEYS[3], s, 1)
    if was_held == 0 and was_sold == 0 then fresh = fresh + 1 end
    if was_sold == 0 then changed[#changed + 1] = s end
  end
  if fresh > 0 then
    redis.call('HINCRBY', KEYS[5], ARGV[2], -fresh)
    redis.call('HINCRBY', KEYS[6], rec[1], fresh)
  end
  redis.call('HSET', KEYS[7], token, ARGV[7])
  publish(changed, 'sold')
end
return 'ok'
