-- KEYS: the session's hash and message list (one hash tag, so one slot).
-- ARGV: now, [expected incarnation, expected version] -> {2, message_count} if a live
-- session was deleted, {1, 0} if an expired one, {0, 0} if none existed, {3, 0} if the
-- stored one is not the expected incarnation and version (nothing deleted).
local current = redis.call('HMGET', KEYS[1], 'expires_at', 'message_count', 'incarnation',
                           'version')
if #ARGV >= 3 and (current[3] ~= ARGV[2] or tonumber(current[4] or '0') ~= tonumber(ARGV[3]))
then
  return {3, 0}
end
redis.call('DEL', KEYS[1], KEYS[2])
if not current[1] then return {0, 0} end
if tonumber(current[1]) > tonumber(ARGV[1]) then return {2, tonumber(current[2])} end
return {1, 0}
