-- enqueue.lua: persist joins the room released, in merge order, into one lane; each ticket at
-- most once.
-- KEYS[1] room epoch (fencing counter)   KEYS[2] room hash (lane tails: "tail", "presale_tail")
-- KEYS[3] places hash (ticket -> place)  KEYS[4] admitted hash   KEYS[5] general lane list
-- KEYS[6] presale lane list              KEYS[7] pre-queue list  KEYS[8] log (unused)
-- KEYS[9] lottery entrants (unused)
-- ARGV[1] caller's epoch
-- ARGV[2] lane: "general", "presale" or "prequeue"
-- ARGV[3], ARGV[4], ... pairs of ticket_id, member ("ticket|user|joined_at_ms"), in order
-- A ticket already placed or admitted is skipped (a replay after a crash, or a rejoin), so
-- nobody is queued twice. A general ticket gets place "<n>", n its sequence number in its
-- lane; a presale one "p<n>"; a pre-queue one "q" until the lottery numbers it. The lane's
-- list and tail change once per call, not per join.
-- Returns "stale" for a zombie caller, else the number of tickets newly placed.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
local list, tail, prefix = KEYS[5], 'tail', ''
if ARGV[2] == 'presale' then
  list, prefix, tail = KEYS[6], 'p', 'presale_tail'
elseif ARGV[2] == 'prequeue' then
  list, tail = KEYS[7], nil
end
local seq = tonumber(tail and redis.call('HGET', KEYS[2], tail) or '0') or 0
local members = {}
for i = 3, #ARGV, 2 do
  local ticket = ARGV[i]
  if redis.call('HEXISTS', KEYS[4], ticket) == 0 then
    local place = tail and (prefix .. string.format('%d', seq)) or 'q'
    if redis.call('HSETNX', KEYS[3], ticket, place) == 1 then
      members[#members + 1] = ARGV[i + 1]
      seq = seq + 1
    end
  end
end
for first = 1, #members, 4000 do  -- unpack stays well inside Lua's C stack
  redis.call('RPUSH', list, unpack(members, first, math.min(first + 3999, #members)))
end
if tail and #members > 0 then
  redis.call('HSET', KEYS[2], tail, string.format('%d', seq))
end
return #members
