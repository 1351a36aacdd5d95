-- KEYS: the session's hash and message list (one hash tag, so one slot).
-- ARGV: incarnation, first index, last index -> the packed messages, or {} if the
-- stored session is another incarnation (or gone).
if redis.call('HGET', KEYS[1], 'incarnation') ~= ARGV[1] then return {} end
return redis.call('LRANGE', KEYS[2], ARGV[2], ARGV[3])
