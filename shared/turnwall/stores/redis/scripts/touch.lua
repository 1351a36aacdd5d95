-- KEYS: the session's hash and message list (one hash tag, so one slot).
-- ARGV: now, grace, ttl_secs or '', incarnation or '', '1' if the caller changes
-- something (updated_at moves, version + 1), '1' to end the session, expected version or
-- '', [metadata blob] -> the hash after the touch, or nil if not live (or another
-- incarnation or version, or a change to an ended session other than ending it).
local now = tonumber(ARGV[1])
local current = redis.call('HMGET', KEYS[1], 'expires_at', 'incarnation', 'ttl_secs',
                           'ended_at', 'version')
if not is_live(current[1], now) or (ARGV[4] ~= '' and current[2] ~= ARGV[4]) then
  return false
end
if current[4] and ARGV[5] == '1' and ARGV[6] ~= '1' then return false end
if ARGV[7] ~= '' and tonumber(current[5] or '0') ~= tonumber(ARGV[7]) then return false end
local ttl = ARGV[3]
if ttl == '' then ttl = current[3] end
redis.call('HSET', KEYS[1], 'ttl_secs', ttl)
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'updated_at', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
if ARGV[6] == '1' and not current[4] then redis.call('HSET', KEYS[1], 'ended_at', ARGV[1]) end
if #ARGV >= 8 then redis.call('HSET', KEYS[1], 'metadata', ARGV[8]) end
slide(now, tonumber(ttl), tonumber(ARGV[2]))
return redis.call('HGETALL', KEYS[1])
