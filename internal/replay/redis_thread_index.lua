-- Adds references to one thread's index, trims it and refreshes its TTL,
-- atomically. It touches KEYS[1] only: one key, one hash slot (Redis Cluster).
--
-- KEYS[1]  the thread index: a sorted set, every score 0, members
--          <seq 16 hex>:<partition 8 hex>:<offset 16 hex> (lexicographic
--          order is exact numeric order)
-- ARGV[1]  members kept (the highest sequences)
-- ARGV[2]  TTL in milliseconds
-- ARGV[3…] members
--
-- Adding a member twice is a no-op. Returns the number of members added.
local key = KEYS[1]
local added = 0
local batch = {}
local function flush()
  if #batch > 0 then
    added = added + redis.call('ZADD', key, unpack(batch))
    batch = {}
  end
end
for i = 3, #ARGV do
  batch[#batch + 1] = 0
  batch[#batch + 1] = ARGV[i]
  if #batch >= 512 then flush() end
end
flush()
redis.call('ZREMRANGEBYRANK', key, 0, -(tonumber(ARGV[1]) + 1))
redis.call('PEXPIRE', key, ARGV[2])
return added
