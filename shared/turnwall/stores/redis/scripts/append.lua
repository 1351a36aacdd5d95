-- KEYS: the session's hash and message list (one hash tag, so one slot).
-- ARGV: now, grace, incarnation, expected message_count, '1' to set the model, model,
-- n = number of field/value arguments creating the session (0 to extend a live one),
-- those n arguments, then the packed messages -> the hash after the append, or nil.
local now = tonumber(ARGV[1])
local creating = tonumber(ARGV[7])
local current = redis.call('HMGET', KEYS[1], 'expires_at', 'incarnation', 'message_count',
                           'ended_at')
if creating > 0 then
  if is_live(current[1], now) then return false end
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], unpack(ARGV, 8, 7 + creating))
elseif not is_live(current[1], now) or current[2] ~= ARGV[3]
    or tonumber(current[3]) ~= tonumber(ARGV[4]) or current[4] then
  return false
end
local first = 8 + creating
redis.call('RPUSH', KEYS[2], unpack(ARGV, first))
local count = tonumber(ARGV[4]) + #ARGV - first + 1
redis.call('HSET', KEYS[1], 'message_count', string.format('%d', count), 'updated_at', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'version', 1)
if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'model', ARGV[6]) end
slide(now, tonumber(redis.call('HGET', KEYS[1], 'ttl_secs')), tonumber(ARGV[2]))
return redis.call('HGETALL', KEYS[1])
