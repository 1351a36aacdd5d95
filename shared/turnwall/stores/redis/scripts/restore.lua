-- KEYS: the session's hash and message list (one hash tag, so one slot).
-- ARGV: now, grace, incarnation, message_count, expires_at (ms), field/value pairs -> 1
-- if the session is that incarnation with that message_count and now holds the fields
-- and expiry given, else 0.
local current = redis.call('HMGET', KEYS[1], 'incarnation', 'message_count')
if current[1] ~= ARGV[3] or tonumber(current[2]) ~= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'expires_at', ARGV[5], unpack(ARGV, 6))
local keep_ms = tonumber(ARGV[5]) - tonumber(ARGV[1]) + tonumber(ARGV[2]) * 1000
redis.call('PEXPIRE', KEYS[1], keep_ms)
redis.call('PEXPIRE', KEYS[2], keep_ms)
return 1
