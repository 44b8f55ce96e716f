-- hold_batch.lua: apply a batch of planned holds of one seat block, each all-or-nothing.
-- KEYS[1] block epoch (fencing counter)      KEYS[2] held bitmap     KEYS[3] sold bitmap
-- KEYS[4] holds hash (token -> record)       KEYS[5] event avail hash
-- KEYS[6] event user-seats hash              KEYS[7] event bookings hash (unused here)
-- KEYS[8] event seat version counter         KEYS[9] event seat change stream
-- ARGV[1] caller's epoch   ARGV[2] block index (field of KEYS[5])   ARGV[3] max seats per user
-- ARGV[4] JSON array of holds: [token, user_id, [seat_index...], record]
-- A hold is its record and nothing else: no expiry index; its owner keeps the expiries in
-- memory (rebuilt from the records on restart) and names the due holds to free_holds.lua.
-- ARGV[5] most entries kept in the seat change stream (approximate MAXLEN)
-- Returns "stale" when the caller's epoch is not current (a zombie incarnation), else a JSON
-- array with one code per hold: "ok", "taken" (a seat is held or sold) or "limit" (user cap).
-- Seats it holds are published as one "held" change (see publish).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
-- Publish the seat changes once: bump the event's seat version, append one stream entry.
local function publish(indices, status)
  if #indices == 0 then return end
  local version = redis.call('INCR', KEYS[8])
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[5], '*',
             'v', version, 'b', ARGV[2], 's', status, 'i', table.concat(indices, ','))
end

local max_per_user = tonumber(ARGV[3])
local results = {}
local changed = {}
for i, h in ipairs(cjson.decode(ARGV[4])) do
  local token, user, seats, record = h[1], h[2], h[3], h[4]
  local code = 'ok'
  local owned = tonumber(redis.call('HGET', KEYS[6], user) or '0')
  if owned + #seats > max_per_user then code = 'limit' end
  if code == 'ok' then
    for _, s in ipairs(seats) do
      if redis.call('GETBIT', KEYS[2], s) == 1 or redis.call('GETBIT', KEYS[3], s) == 1 then
        code = 'taken'
        break
      end
    end
  end
  if code == 'ok' then
    for _, s in ipairs(seats) do
      redis.call('SETBIT', KEYS[2], s, 1)
      changed[#changed + 1] = s
    end
    redis.call('HSET', KEYS[4], token, record)
    redis.call('HINCRBY', KEYS[5], ARGV[2], -#seats)
    redis.call('HINCRBY', KEYS[6], user, #seats)
  end
  results[i] = code
end
publish(changed, 'held')
return cjson.encode(results)
