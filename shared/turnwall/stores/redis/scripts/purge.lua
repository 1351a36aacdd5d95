-- KEYS: the session's hash and message list (one hash tag, so one slot).
-- ARGV: now, incarnation -> -1 if a live session holds the id (left alone), else how
-- many records of that incarnation were removed (hash + messages; 0 if none is stored).
local current = redis.call('HMGET', KEYS[1], 'expires_at', 'incarnation')
if current[1] and tonumber(current[1]) > tonumber(ARGV[1]) then return -1 end
if current[2] ~= ARGV[2] then return 0 end
local removed = 1 + redis.call('LLEN', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
return removed
