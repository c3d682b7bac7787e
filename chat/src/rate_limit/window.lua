-- The sliding window of rate_limit/window.rs, for Redis: the same rule, so that every node
-- shares one window per user. At most `max` events fall within any `window` ms; an event at
-- `now` is allowed when fewer than `max` recorded events are newer than `now - window`.
-- The events are a sorted set scored by time. Prepended to the ledger's admit script.

-- 0 when an event at `now` is allowed, else the ms until it would be.
local function window_wait(key, now, max, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) < max then return 0 end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local wait = (tonumber(oldest[2]) or now) + window - now
  if wait < 1 then wait = 1 end
  return wait
end

-- Record an event that window_wait allowed; `member` must be unique within the key.
local function window_record(key, now, member, window)
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
end

