-- KEYS: the session's hash and message list (one hash tag, so one slot).
-- ARGV: incarnation, list index, header bytes, old blob, new blob -> 1 if the message's
-- blob was replaced (header kept), 0 as for replace_field.lua. Keeps the key TTL.
if redis.call('HGET', KEYS[1], 'incarnation') ~= ARGV[1] then return 0 end
local current = redis.call('LINDEX', KEYS[2], ARGV[2])
local header = tonumber(ARGV[3])
if not current or string.sub(current, header + 1) ~= ARGV[4] then return 0 end
redis.call('LSET', KEYS[2], ARGV[2], string.sub(current, 1, header) .. ARGV[5])
return 1
