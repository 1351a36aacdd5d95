-- KEYS: one tenant's ids by expiry and ids by name (one hash tag, so one slot).
-- ARGV: score, id, score, id, ... Only ever raises a score (GT); deletes lower it (LT).
for i = 1, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'GT', ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], 0, ARGV[i + 1])
end
return #ARGV / 2
