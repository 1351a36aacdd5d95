-- KEYS: the session's hash and message list (one hash tag, so one slot).
-- ARGV: now, grace, ttl_secs, field, value, ... -> 1 if inserted, 0 if a live one exists.
local now = tonumber(ARGV[1])
if is_live(redis.call('HGET', KEYS[1], 'expires_at'), now) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
slide(now, tonumber(ARGV[3]), tonumber(ARGV[2]))
return 1
