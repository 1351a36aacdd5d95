-- Shared by the session scripts that slide expiry (prepended to them when loaded).
-- KEYS = (session hash, message list); times are epoch milliseconds.
local function is_live(expires_at, now)
  return expires_at and tonumber(expires_at) > now
end
local function slide(now, ttl, grace)
  redis.call('HSET', KEYS[1], 'expires_at', string.format('%d', now + ttl * 1000))
  local keep_ms = (ttl + grace) * 1000
  redis.call('PEXPIRE', KEYS[1], keep_ms)
  redis.call('PEXPIRE', KEYS[2], keep_ms)
end
