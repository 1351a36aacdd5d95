-- KEYS: the session's hash and message list (one hash tag, so one slot).
-- ARGV: incarnation, hash field, old value, new value -> 1 if replaced, 0 if the session
-- is another incarnation (or gone) or the field holds something else. Keeps the key TTL.
if redis.call('HGET', KEYS[1], 'incarnation') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
return 1
