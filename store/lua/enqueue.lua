-- enqueue.lua: persist joins the room released in merge order, each ticket at most once.
-- KEYS[1] room epoch (fencing counter)   KEYS[2] room hash (lane tails: "tail", "presale_tail")
-- KEYS[3] places hash (ticket -> place)  KEYS[4] admitted hash   KEYS[5] general lane list
-- KEYS[6] presale lane list              KEYS[7] pre-queue list  KEYS[8] log (unused)
-- KEYS[9] lottery entrants (unused)
-- ARGV[1] caller's epoch
-- ARGV[2] JSON array of [ticket_id, member, lane], lane "general", "presale" or "prequeue";
--         member is "ticket|user|joined_at_ms"
-- A ticket already placed or admitted is skipped (a replay after a crash), so nobody is
-- queued twice. A general ticket gets place "<n>", n its sequence number in its lane; a
-- presale one "p<n>"; a pre-queue one "q" until the lottery numbers it.
-- Returns "stale" for a zombie caller, else the number of tickets newly placed.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
local added = 0
for _, join in ipairs(cjson.decode(ARGV[2])) do
  local ticket, member, lane = join[1], join[2], join[3]
  if redis.call('HEXISTS', KEYS[3], ticket) == 0 and redis.call('HEXISTS', KEYS[4], ticket) == 0 then
    local place
    if lane == 'general' then
      place = tostring(redis.call('HINCRBY', KEYS[2], 'tail', 1) - 1)
      redis.call('RPUSH', KEYS[5], member)
    elseif lane == 'presale' then
      place = 'p' .. (redis.call('HINCRBY', KEYS[2], 'presale_tail', 1) - 1)
      redis.call('RPUSH', KEYS[6], member)
    else
      place = 'q'
      redis.call('RPUSH', KEYS[7], member)
    end
    redis.call('HSET', KEYS[3], ticket, place)
    added = added + 1
  end
end
return added
