-- lottery.lua: move one chunk of the pre-queue, in lottery order, to the front of the general
-- lane; the last chunk reveals the seed and closes the pre-queue.
-- KEYS[1] room epoch (fencing counter)   KEYS[2] room hash ("tail", "lottery_cursor", ...)
-- KEYS[3] places hash                    KEYS[4] admitted hash (unused)
-- KEYS[5] general lane list              KEYS[6] presale lane (unused)
-- KEYS[7] pre-queue list                 KEYS[8] log (unused)   KEYS[9] lottery entrants list
-- ARGV[1] caller's epoch   ARGV[2] index of this chunk's first member in the lottery order
-- ARGV[3] JSON array of members "ticket|user|joined_at_ms" in lottery order
-- ARGV[4] "final" on the last chunk, else ""   ARGV[5] the seed (hex), revealed on "final"
-- Chunks apply only in order (ARGV[2] must equal the stored cursor), so a restarted room
-- resumes the same deterministic order where it stopped.
-- Returns "stale" for a zombie caller, "cursor:<n>" when ARGV[2] is not the cursor, else "ok".
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
local cursor = tonumber(redis.call('HGET', KEYS[2], 'lottery_cursor') or '0')
if cursor ~= tonumber(ARGV[2]) then return 'cursor:' .. cursor end
local members = cjson.decode(ARGV[3])
for _, member in ipairs(members) do
  local ticket = string.sub(member, 1, string.find(member, '|', 1, true) - 1)
  local seq = redis.call('HINCRBY', KEYS[2], 'tail', 1) - 1
  redis.call('RPUSH', KEYS[5], member)
  redis.call('HSET', KEYS[3], ticket, tostring(seq))
  redis.call('RPUSH', KEYS[9], ticket)
end
redis.call('HSET', KEYS[2], 'lottery_cursor', cursor + #members)
if ARGV[4] == 'final' then
  redis.call('DEL', KEYS[7])
  redis.call('HSET', KEYS[2], 'lottery_done', '1', 'seed', ARGV[5])
end
return 'ok'
