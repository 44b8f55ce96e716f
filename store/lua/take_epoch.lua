-- take_epoch.lua: a new incarnation's fencing epoch, greater than any taken before, even by
-- an incarnation whose epoch a Redis restart lost (an empty Redis, or the last writes of a
-- crash): the epoch is at least the caller's clock in ms.
-- KEYS[1] the entity's epoch key (a block's or a room's fencing counter)
-- ARGV[1] the caller's wall clock, epoch ms
-- Returns the new epoch: max(stored + 1, ARGV[1]).
local epoch = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if epoch < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  epoch = floor
end
return epoch
