#!lua name=ticketing_block_@VERSION@
-- block.lua: the fenced writes of one seat block's owner, as one Redis Functions library.
-- Loaded with FUNCTION LOAD by store/scripts.py, which puts the hash of this source in place
-- of @VERSION@: a library and its functions are named after the code, so two versions of the
-- app (a rolling upgrade) never call each other's functions with the wrong arguments.
--
-- Every function takes the same KEYS (store/keys.block_script_keys):
-- KEYS[1] block epoch (fencing counter)      KEYS[2] held bitmap     KEYS[3] sold bitmap
-- KEYS[4] holds hash (token -> record)       KEYS[5] event avail hash
-- KEYS[6] event user-seats hash              KEYS[7] event bookings hash
-- KEYS[8] event seat version counter         KEYS[9] event seat change stream
-- and ARGV[1] the caller's epoch, ARGV[2] the block index (field of KEYS[5]); the rest of
-- ARGV per function, below. Each returns "stale" when the caller's epoch is not current (a
-- zombie incarnation), writing nothing.
-- A record is "<status>|<json [user, [seat_index...], total, expires_ms, idem_key]>".

-- The epoch guard of every write.
local function stale(keys, args)
  return redis.call('GET', keys[1]) ~= args[1]
end

-- Publish the seat changes of a call once: bump the event's seat version, append one entry
-- (at most `log_max` kept, approximately) to the event's seat change stream.
local function publish(keys, block, log_max, indices, status)
  if #indices == 0 then return end
  local version = redis.call('INCR', keys[8])
  redis.call('XADD', keys[9], 'MAXLEN', '~', log_max, '*',
             'v', version, 'b', block, 's', status, 'i', table.concat(indices, ','))
end

-- hold_batch: apply a batch of planned holds, each all-or-nothing.
-- ARGV[3] max seats per user   ARGV[4] JSON array of holds: [token, user_id, [seat_index...], record]
-- ARGV[5] most entries kept in the seat change stream
-- A hold is its record and nothing else: no expiry index; its owner keeps the expiries in
-- memory (rebuilt from the records on restart) and names the due holds to free_holds.
-- Returns a JSON array with one code per hold: "ok", "taken" (a seat is held or sold) or
-- "limit" (user cap). The seats it holds are published as one "held" change.
local function hold_batch(keys, args)
  if stale(keys, args) then return 'stale' end
  local max_per_user = tonumber(args[3])
  local results = {}
  local changed = {}
  for i, h in ipairs(cjson.decode(args[4])) do
    local token, user, seats, record = h[1], h[2], h[3], h[4]
    local code = 'ok'
    local owned = tonumber(redis.call('HGET', keys[6], user) or '0')
    if owned + #seats > max_per_user then code = 'limit' end
    if code == 'ok' then
      for _, s in ipairs(seats) do
        if redis.call('GETBIT', keys[2], s) == 1 or redis.call('GETBIT', keys[3], s) == 1 then
          code = 'taken'
          break
        end
      end
    end
    if code == 'ok' then
      for _, s in ipairs(seats) do
        redis.call('SETBIT', keys[2], s, 1)
        changed[#changed + 1] = s
      end
      redis.call('HSET', keys[4], token, record)
      redis.call('HINCRBY', keys[5], args[2], -#seats)
      redis.call('HINCRBY', keys[6], user, #seats)
    end
    results[i] = code
  end
  publish(keys, args[2], args[5], changed, 'held')
  return cjson.encode(results)
end

-- free_holds: end live holds and give their seats back.
-- ARGV[3] new status: "released" or "expired"   ARGV[4] now (epoch ms)
-- ARGV[5] JSON array of hold tokens: to release, or that the owner found due to expire
-- ARGV[6] most entries kept in the seat change stream
-- Only "active" holds are freed, an expiring one only once its stored expiry is <= now: the
-- record, not the caller, decides. Returns a JSON array of the tokens it freed; the freed
-- seats are published as one "available" change.
local function free_holds(keys, args)
  if stale(keys, args) then return 'stale' end
  local status, now = args[3], tonumber(args[4])
  local freed = {}
  local changed = {}
  for _, token in ipairs(cjson.decode(args[5])) do
    local record = redis.call('HGET', keys[4], token)
    if record then
      local bar = string.find(record, '|', 1, true)
      local body = string.sub(record, bar + 1)
      local rec = cjson.decode(body)
      if string.sub(record, 1, bar - 1) == 'active' and (status ~= 'expired' or rec[4] <= now) then
        for _, s in ipairs(rec[2]) do
          redis.call('SETBIT', keys[2], s, 0)
          changed[#changed + 1] = s
        end
        redis.call('HSET', keys[4], token, status .. '|' .. body)
        redis.call('HINCRBY', keys[5], args[2], #rec[2])
        redis.call('HINCRBY', keys[6], rec[1], -#rec[2])
        freed[#freed + 1] = token
      end
    end
  end
  publish(keys, args[2], args[6], changed, 'available')
  if #freed == 0 then return '[]' end
  return cjson.encode(freed)
end

-- transition: move holds to new statuses, optionally selling their seats.
-- ARGV[3] JSON array of transitions, each [token, expected, record, booking]:
--         token     the hold's token (field of KEYS[4])
--         expected  its current status ("" accepts any, including no record: used by recovery)
--         record    the new record
--         booking   the booking JSON to store and whose record's seats are marked sold, or ""
-- ARGV[4] most entries kept in the seat change stream
-- Returns a JSON array with one answer per transition, in order: "ok", or "state:<status>"
-- when that hold is not in the expected status ("state:" when there is no record; that
-- transition writes nothing, the others still apply). The seats sold by the whole call are
-- published as one "sold" change; other transitions change no seat and publish nothing.
local function transition(keys, args)
  if stale(keys, args) then return 'stale' end
  local answers = {}
  local changed = {}
  for n, t in ipairs(cjson.decode(args[3])) do
    local token, expected, new, booking = t[1], t[2], t[3], t[4]
    local current = redis.call('HGET', keys[4], token)
    local status = ''
    if current then status = string.sub(current, 1, string.find(current, '|', 1, true) - 1) end
    if expected ~= '' and status ~= expected then
      answers[n] = 'state:' .. status
    else
      redis.call('HSET', keys[4], token, new)
      if booking ~= '' then
        local rec = cjson.decode(string.sub(new, string.find(new, '|', 1, true) + 1))
        local fresh = 0
        for _, s in ipairs(rec[2]) do
          local was_held = redis.call('SETBIT', keys[2], s, 0)
          local was_sold = redis.call('SETBIT', keys[3], s, 1)
          if was_held == 0 and was_sold == 0 then fresh = fresh + 1 end
          if was_sold == 0 then changed[#changed + 1] = s end
        end
        if fresh > 0 then
          redis.call('HINCRBY', keys[5], args[2], -fresh)
          redis.call('HINCRBY', keys[6], rec[1], fresh)
        end
        redis.call('HSET', keys[7], token, booking)
      end
      answers[n] = 'ok'
    end
  end
  publish(keys, args[2], args[4], changed, 'sold')
  return cjson.encode(answers)
end

redis.register_function('ticketing_hold_batch_@VERSION@', hold_batch)
redis.register_function('ticketing_free_holds_@VERSION@', free_holds)
redis.register_function('ticketing_transition_@VERSION@', transition)
