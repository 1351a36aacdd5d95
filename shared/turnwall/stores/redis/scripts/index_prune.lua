-- KEYS: one tenant's ids by expiry and ids by name (one hash tag, so one slot).
-- ARGV: cutoff (ms), id, ... -> how many ids were removed (only those scored <= cutoff).
local cutoff = tonumber(ARGV[1])
local removed = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= cutoff then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    removed = removed + 1
  end
end
return removed
