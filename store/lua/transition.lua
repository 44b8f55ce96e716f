-- transition.lua: move holds of one seat block to new statuses, optionally selling their seats.
-- KEYS[1] block epoch (fencing counter)      KEYS[2] held bitmap     KEYS[3] sold bitmap
-- KEYS[4] holds hash (token -> record)       KEYS[5] event avail hash
-- KEYS[6] event user-seats hash              KEYS[7] event bookings hash
-- KEYS[8] event seat version counter         KEYS[9] event seat change stream
-- ARGV[1] caller's epoch   ARGV[2] block index (field of KEYS[5])
-- ARGV[3] JSON array of transitions, each [token, expected, record, booking]:
--         token     the hold's token (field of KEYS[4])
--         expected  its current status ("" accepts any, including no record: used by recovery)
--         record    the new record "<status>|<json [user, [seat_index...], total, expires_ms, key]>"
--         booking   the booking JSON to store and whose record's seats are marked sold, or ""
-- ARGV[4] most entries kept in the seat change stream (approximate MAXLEN)
-- Returns "stale" for a zombie caller (nothing written), else a JSON array with one answer per
-- transition, in order: "ok", or "state:<status>" when that hold is not in the expected status
-- ("state:" when there is no record; that transition writes nothing, the others still apply).
-- The seats sold by the whole call are published as one "sold" change (see publish); other
-- transitions change no seat and publish nothing.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
-- Publish the seat changes once: bump the event's seat version, append one stream entry.
local function publish(indices, status)
  if #indices == 0 then return end
  local version = redis.call('INCR', KEYS[8])
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[4], '*',
             'v', version, 'b', ARGV[2], 's', status, 'i', table.concat(indices, ','))
end

local answers = {}
local changed = {}
for n, t in ipairs(cjson.decode(ARGV[3])) do
  local token, expected, new, booking = t[1], t[2], t[3], t[4]
  local current = redis.call('HGET', KEYS[4], token)
  local status = ''
  if current then status = string.sub(current, 1, string.find(current, '|', 1, true) - 1) end
  if expected ~= '' and status ~= expected then
    answers[n] = 'state:' .. status
  else
    redis.call('HSET', KEYS[4], token, new)
    if booking ~= '' then
      local rec = cjson.decode(string.sub(new, string.find(new, '|', 1, true) + 1))
      local fresh = 0
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
      redis.call('HSET', KEYS[7], token, booking)
    end
    answers[n] = 'ok'
  end
end
publish(changed, 'sold')
return cjson.encode(answers)
