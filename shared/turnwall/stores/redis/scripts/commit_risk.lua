-- KEYS: the session's hash and message list (one hash tag, so one slot).
-- ARGV: now, grace, incarnation, expected risk_version, risk blob -> the hash, or nil.
local now = tonumber(ARGV[1])
local current = redis.call('HMGET', KEYS[1], 'expires_at', 'incarnation', 'risk_version',
                           'ttl_secs')
if not is_live(current[1], now) or current[2] ~= ARGV[3]
    or tonumber(current[3]) ~= tonumber(ARGV[4]) then
  return false
end
redis.call('HSET', KEYS[1], 'risk', ARGV[5],
           'risk_version', string.format('%d', tonumber(ARGV[4]) + 1))
slide(now, tonumber(current[4]), tonumber(ARGV[2]))
return redis.call('HGETALL', KEYS[1])
