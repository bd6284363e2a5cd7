-- Appends records to one partition's log, trims it and refreshes its TTL,
-- atomically. It touches KEYS[1] only: one key, one hash slot (Redis Cluster).
--
-- KEYS[1]  the partition log: a stream whose entry IDs are <offset>-1
--          (exact uint64 ordering; "-1" because Redis refuses the ID 0-0)
-- ARGV[1]  entries kept (XTRIM MAXLEN = ARGV[1])
-- ARGV[2]  TTL in milliseconds
-- ARGV[3…] eight values per record, ascending offsets:
--          offset, prev, payload field ("value" or "skipped"), payload, ts, threads,
--          tenant (stored only when not empty),
--          facts: message type and event types (stored only when not empty:
--          every valid record has them, a skipped one has none)
--
-- A record at or below the newest entry is skipped, so a duplicate or late
-- write is a no-op, never an error. Offsets are compared as decimal strings
-- (length first): no number conversion, exact up to 2^63-1.
-- Returns the number of records added.
local key = KEYS[1]
local last = nil
local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
if #top > 0 then
  last = string.match(top[1][1], '^(%d+)%-')
end

local function newer(off)
  if last == nil then return true end
  if #off ~= #last then return #off > #last end
  return off > last
end

local added = 0
for i = 3, #ARGV, 8 do
  local off = ARGV[i]
  if newer(off) then
    local entry = {'prev', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], 'ts', ARGV[i + 4], 'threads', ARGV[i + 5]}
    if ARGV[i + 6] ~= '' then
      entry[#entry + 1] = 'tenant'
      entry[#entry + 1] = ARGV[i + 6]
    end
    if ARGV[i + 7] ~= '' then
      entry[#entry + 1] = 'facts'
      entry[#entry + 1] = ARGV[i + 7]
    end
    redis.call('XADD', key, off .. '-1', unpack(entry))
    last = off
    added = added + 1
  end
end
if added > 0 then
  redis.call('XTRIM', key, 'MAXLEN', '=', ARGV[1])
end
redis.call('PEXPIRE', key, ARGV[2])
return added
