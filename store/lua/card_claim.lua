-- card_claim.lua: claim a checkout's seats for its card against the event's cap, or give them back.
-- KEYS[1] card seats hash (fingerprint -> seats)   KEYS[2] claims hash (hold token -> "fp|seats")
-- ARGV[1] "claim" or "release"   ARGV[2] hold token   ARGV[3] card fingerprint ("" on release)
-- ARGV[4] seats of the hold      ARGV[5] the event's seat cap
-- A claim is recorded under the hold token, so claiming twice counts once and releasing an
-- unclaimed (or already released) hold does nothing.
-- Returns "ok", or "limit" when the card would pass the cap (nothing changed).
local claimed = redis.call('HGET', KEYS[2], ARGV[2])
if ARGV[1] == 'release' then
  if claimed then
    local bar = string.find(claimed, '|', 1, true)
    redis.call('HINCRBY', KEYS[1], string.sub(claimed, 1, bar - 1), -tonumber(string.sub(claimed, bar + 1)))
    redis.call('HDEL', KEYS[2], ARGV[2])
  end
  return 'ok'
end
if claimed then return 'ok' end
local seats = tonumber(ARGV[4])
if tonumber(redis.call('HGET', KEYS[1], ARGV[3]) or '0') + seats > tonumber(ARGV[5]) then
  return 'limit'
end
redis.call('HINCRBY', KEYS[1], ARGV[3], seats)
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. '|' .. seats)
return 'ok'
