"""The Lua scripts of the Redis frontier: every change to the shared state is one atomic script.

Each script gets ``KEYS[1]`` = the job's ``meta`` key (so that a cluster routes it; every key of a
job shares the ``{job}`` hash tag, hence one slot) and ``ARGV[1]`` = the job's key prefix
``crawlkit:{job}:``. Times are the Redis server's clock (``TIME``), so that workers on machines
whose clocks disagree still agree on delays and lease deadlines.

Key layout under the prefix ``P``:

* ``P meta`` (hash): spider, created, shards, ``format`` (2: queues ranked by turns), ``seq``
  (request ids), ``rseq`` (ready order), ``seeded`` and the counters ``pending``, ``leased``,
  ``seen``, ``done``, ``failed``.
* ``P turns`` (hash): ``serving``, the highest turn leased, and ``l:<callback>``, the last turn
  handed to a callback's requests (frontier/_turns.py tells the order they make).
* ``P seen:<shard>`` (hash): the seen set, sharded by the fingerprint's first bits; a field is the
  rest of the fingerprint. Small hashes use Redis's compact listpack encoding.
* ``P req`` (hash): request id -> pickled request, for every request not yet done or failed.
* ``P q:<host>`` (sorted set): a host's pending request ids, by *rank*: ``-priority`` (clamped to
  +-4095) times 2^40 plus the request's turn, exact in a double. Equal ranks sort by id, which is
  fixed-width hex, hence first in, first out.
* ``P h:<host>`` (hash): ``f`` requests in flight (all workers), ``c`` concurrency limit, ``d``
  delay, ``n`` the server time before which the next request may not start.
* ``P ready`` (sorted set): hosts that can start a request now, best priority first, then in the
  order they became ready. ``P timed`` (sorted set): hosts waiting for their delay, by time.
  A host at its concurrency limit is in neither; the end of one of its leases puts it back.
* ``P delayed`` (sorted set): retries waiting for their time; members are handles.
* ``P workers`` (set): every worker id that ever joined. ``P w:<worker>`` (hash): its part file,
  committed ``offset``, spider ``state``, commit ``seq``. ``P owner:<worker>`` (string, expiring):
  the token of the live process using that id.
* ``P leases:<worker>`` (sorted set): handles leased to a worker, by deadline. Acked requests stay
  here until the worker's next commit. ``P held:<worker>`` (set): the handles among those whose
  host slot is still taken (not yet acked). ``P expiry`` (sorted set): workers by the deadline of
  their earliest lease, so that finding expired leases does not visit every worker.

A *handle* is ``id|rank|host``: all that is needed to put a request back in its queue.
Numbers given to ``redis.call`` are formatted by hand: Lua's default conversion keeps only 14
significant digits.
"""

from __future__ import annotations

__all__ = [
    "ACK",
    "CLOSE",
    "COMMIT",
    "COOLDOWN",
    "FAIL",
    "LEASE",
    "OPEN",
    "PUSH",
    "RECLAIM",
    "RELEASE",
    "RENEW",
    "RETRY",
]

# Shared by every script. 2^40 splits a ready host's score into priority (high bits) and order,
# and a queued request's rank into priority and turn.
_PRELUDE = r"""
local P = ARGV[1]
local META = KEYS[1]
local SPLIT = 1099511627776

local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function fmt(x)
  return string.format('%.6f', x)
end

local function split(handle)
  local a = string.find(handle, '|', 1, true)
  local b = string.find(handle, '|', a + 1, true)
  return string.sub(handle, 1, a - 1), tonumber(string.sub(handle, a + 1, b - 1)), string.sub(handle, b + 1)
end

local function sched(h, now)
  local top = redis.call('ZRANGE', P .. 'q:' .. h, 0, 0, 'WITHSCORES')
  if #top == 0 then
    redis.call('ZREM', P .. 'ready', h)
    redis.call('ZREM', P .. 'timed', h)
    return
  end
  local hs = redis.call('HMGET', P .. 'h:' .. h, 'f', 'c', 'n')
  local f = tonumber(hs[1]) or 0
  local c = tonumber(hs[2]) or 1
  if f >= c then
    redis.call('ZREM', P .. 'ready', h)
    redis.call('ZREM', P .. 'timed', h)
    return
  end
  local nx = tonumber(hs[3]) or 0
  if nx > now then
    redis.call('ZREM', P .. 'ready', h)
    redis.call('ZADD', P .. 'timed', fmt(nx), h)
    return
  end
  redis.call('ZREM', P .. 'timed', h)
  local p = math.floor(tonumber(top[2]) / SPLIT) + 4096
  local cur = redis.call('ZSCORE', P .. 'ready', h)
  if cur and math.floor(tonumber(cur) / SPLIT) <= p then
    return
  end
  local seq = redis.call('HINCRBY', META, 'rseq', 1) % SPLIT
  redis.call('ZADD', P .. 'ready', string.format('%d', p * SPLIT + seq), h)
end

-- A lease ends: give the host slot back if it is still taken.
local function free_slot(W, handle, h, now)
  if redis.call('SREM', P .. 'held:' .. W, handle) == 1 then
    local f = redis.call('HINCRBY', P .. 'h:' .. h, 'f', -1)
    if f < 0 then
      redis.call('HSET', P .. 'h:' .. h, 'f', 0)
    end
    return true
  end
  return false
end

-- A queued request's rank: -priority (clamped) in the high bits, its turn in the low ones.
local function rank(priority, turn)
  local p = -priority
  if p < -4095 then p = -4095 elseif p > 4095 then p = 4095 end
  return string.format('%d', p * SPLIT + turn)
end

-- The turn of a new request of a callback (see frontier/_turns.py): one past the callback's last turn or
-- the turn being served, whichever is later.
local function next_turn(lane)
  local key = P .. 'turns'
  local t = redis.call('HMGET', key, 'l:' .. lane, 'serving')
  local last, serving = tonumber(t[1]) or 0, tonumber(t[2]) or 0
  if serving > last then last = serving end
  redis.call('HSET', key, 'l:' .. lane, string.format('%d', last + 1))
  return last + 1
end

-- A leased request goes back to its queue (a release, an expired lease, a restarted worker),
-- keeping its rank.
local function requeue(W, handle, now)
  local id, r, h = split(handle)
  redis.call('ZREM', P .. 'leases:' .. W, handle)
  free_slot(W, handle, h, now)
  redis.call('HINCRBY', META, 'leased', -1)
  if redis.call('HEXISTS', P .. 'req', id) == 1 then
    redis.call('ZADD', P .. 'q:' .. h, string.format('%d', r), id)
    redis.call('HINCRBY', META, 'pending', 1)
  end
  sched(h, now)
end

-- Index a worker under the deadline of its earliest lease, or drop it if it holds none.
local function index_expiry(W)
  local first = redis.call('ZRANGE', P .. 'leases:' .. W, 0, 0, 'WITHSCORES')
  if #first > 0 then
    redis.call('ZADD', P .. 'expiry', first[2], W)
  else
    redis.call('ZREM', P .. 'expiry', W)
  end
end

-- Push requests given as 8 arguments each from ARGV[start]: shard ('' = not deduplicated),
-- fingerprint field, host, priority, pickled request, host concurrency, host delay, callback.
local function push(start, count, now)
  local queued, dups, seen = 0, 0, 0
  local touched = {}
  for i = 0, count - 1 do
    local o = start + i * 8
    local shard = ARGV[o]
    local fresh = 1
    if shard ~= '' then
      fresh = redis.call('HSETNX', P .. 'seen:' .. shard, ARGV[o + 1], '')
    end
    if fresh == 1 then
      if shard ~= '' then seen = seen + 1 end
      local h = ARGV[o + 2]
      local id = string.format('%012x', redis.call('HINCRBY', META, 'seq', 1))
      redis.call('HSET', P .. 'req', id, ARGV[o + 4])
      redis.call('ZADD', P .. 'q:' .. h, rank(tonumber(ARGV[o + 3]), next_turn(ARGV[o + 7])), id)
      redis.call('HSET', P .. 'h:' .. h, 'c', ARGV[o + 5], 'd', ARGV[o + 6])
      touched[h] = true
      queued = queued + 1
    else
      dups = dups + 1
    end
  end
  if queued > 0 then
    redis.call('HINCRBY', META, 'pending', queued)
    redis.call('HINCRBY', META, 'seen', seen)
  end
  for h in pairs(touched) do
    sched(h, now)
  end
  return queued, dups
end

-- What every reply of a script that changes the queue ends with, so that a worker's figures are
-- never older than its own last call: the seconds until a request may be ready (0: now; -1: none
-- is waiting for a time), the crawl's counters, the hosts ready now, and this worker's acked
-- requests waiting for its commit. Appended to ``head``.
local function with_view(head, W, now)
  local wait = -1
  local ready = redis.call('ZCARD', P .. 'ready')
  if ready > 0 then
    wait = 0
  else
    local t = redis.call('ZRANGE', P .. 'timed', 0, 0, 'WITHSCORES')
    if #t > 0 then wait = tonumber(t[2]) - now end
    local dl = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
    if #dl > 0 then
      local w2 = tonumber(dl[2]) - now
      if wait < 0 or w2 < wait then wait = w2 end
    end
    -- Due already (a host or retry a lease has not promoted yet): ready now.
    if wait < 0 and (#t > 0 or #dl > 0) then wait = 0 end
  end
  local m = redis.call('HMGET', META, 'pending', 'leased', 'seen', 'done', 'failed', 'seeded')
  local acked = redis.call('ZCARD', P .. 'leases:' .. W) - redis.call('SCARD', P .. 'held:' .. W)
  head[#head + 1] = fmt(wait)
  for i = 1, 6 do head[#head + 1] = m[i] end
  head[#head + 1] = ready
  head[#head + 1] = acked
  return head
end

-- Every script but OPEN starts with this: a job whose meta is gone lost its state (a Redis
-- restarted without persistence, a reset while workers ran); going on would crawl it again.
local function gone()
  return redis.call('EXISTS', META) == 0
end
"""

# ARGV: P, worker, token, ttl ms, spider, shards, part, node.
OPEN = (
    _PRELUDE
    + r"""
local W = ARGV[2]
local now = now_s()
local created = 0
if redis.call('EXISTS', META) == 0 then
  redis.call('HSET', META, 'spider', ARGV[5], 'shards', ARGV[6], 'created', fmt(now), 'seq', 0,
    'rseq', 0, 'seeded', 0, 'pending', 0, 'leased', 0, 'seen', 0, 'done', 0, 'failed', 0,
    'format', 2)
  created = 1
else
  local spider = redis.call('HGET', META, 'spider')
  if spider ~= ARGV[5] then
    return {'spider', spider or ''}
  end
  if redis.call('HGET', META, 'format') ~= '2' then
    return {'format'}
  end
end
if not redis.call('SET', P .. 'owner:' .. W, ARGV[3], 'NX', 'PX', ARGV[4]) then
  return {'busy'}
end
redis.call('SADD', P .. 'workers', W)
-- What a previous process with this id leased is pending again: its output past the committed
-- offset is cut away, so that work is redone.
local old = redis.call('ZRANGE', P .. 'leases:' .. W, 0, -1)
for _, handle in ipairs(old) do
  requeue(W, handle, now)
end
redis.call('DEL', P .. 'held:' .. W)
redis.call('ZREM', P .. 'expiry', W)
local wk = P .. 'w:' .. W
redis.call('HSET', wk, 'part', ARGV[7], 'node', ARGV[8], 'started', fmt(now))
redis.call('HSETNX', wk, 'offset', 0)
redis.call('HSETNX', wk, 'seq', 0)
redis.call('HSETNX', wk, 'state', '')
local w = redis.call('HMGET', wk, 'offset', 'state', 'seq')
local m = redis.call('HMGET', META, 'seeded', 'shards', 'pending', 'leased', 'seen', 'done', 'failed')
return {'ok', created, w[1], w[2], w[3], m[1], m[2], m[3], m[4], m[5], m[6], m[7], #old}
"""
)

# ARGV: P, worker, count, 8 x count push arguments.
PUSH = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local now = now_s()
local queued, dups = push(4, tonumber(ARGV[3]), now)
return with_view({'ok', queued, dups}, ARGV[2], now)
"""
)

# ARGV: P, worker, n, ttl seconds.
LEASE = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local W = ARGV[2]
local n = tonumber(ARGV[3])
local now = now_s()
local touched = {}
local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', fmt(now), 'LIMIT', 0, 1000)
for _, handle in ipairs(due) do
  local id, r, h = split(handle)
  redis.call('ZREM', P .. 'delayed', handle)
  redis.call('ZADD', P .. 'q:' .. h, string.format('%d', r), id)
  touched[h] = true
end
for _, h in ipairs(redis.call('ZRANGEBYSCORE', P .. 'timed', '-inf', fmt(now), 'LIMIT', 0, 1000)) do
  touched[h] = true
end
for h in pairs(touched) do
  sched(h, now)
end
local out = {}
local taken = 0
local serving = tonumber(redis.call('HGET', P .. 'turns', 'serving')) or 0
local served = serving
local deadline = fmt(now + tonumber(ARGV[4]))
while taken < n do
  local top = redis.call('ZPOPMIN', P .. 'ready')
  if #top == 0 then break end
  local h = top[1]
  local popped = redis.call('ZPOPMIN', P .. 'q:' .. h)
  if #popped > 0 then
    local id = popped[1]
    local r = tonumber(popped[2])
    local turn = r - math.floor(r / SPLIT) * SPLIT
    if turn > served then served = turn end
    local handle = id .. '|' .. string.format('%d', r) .. '|' .. h
    local hk = P .. 'h:' .. h
    redis.call('HINCRBY', hk, 'f', 1)
    local d = tonumber(redis.call('HGET', hk, 'd')) or 0
    if d > 0 then
      redis.call('HSET', hk, 'n', fmt(now + d))
    end
    redis.call('ZADD', P .. 'leases:' .. W, deadline, handle)
    redis.call('SADD', P .. 'held:' .. W, handle)
    out[#out + 1] = handle
    out[#out + 1] = redis.call('HGET', P .. 'req', id)
    taken = taken + 1
  end
  sched(h, now)
end
if served > serving then
  redis.call('HSET', P .. 'turns', 'serving', string.format('%d', served))
end
if taken > 0 then
  redis.call('HINCRBY', META, 'pending', -taken)
  redis.call('HINCRBY', META, 'leased', taken)
  redis.call('ZADD', P .. 'expiry', 'LT', deadline, W)
end
return with_view({'ok', out}, W, now)
"""
)

# ARGV: P, worker, handle, the host's delay now ('' = unchanged), count, 8 x count push
# arguments. The handle stays leased until the worker's next commit; only its host slot is
# given back now. The delay comes from the acking worker's host policy (adaptive, Crawl-delay).
ACK = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local W = ARGV[2]
local handle = ARGV[3]
local now = now_s()
local _, _, h = split(handle)
if ARGV[4] ~= '' then
  redis.call('HSET', P .. 'h:' .. h, 'd', ARGV[4])
end
if free_slot(W, handle, h, now) then
  sched(h, now)
end
local queued, dups = push(6, tonumber(ARGV[5]), now)
return with_view({'ok', queued, dups}, W, now)
"""
)

# ARGV: P, host, seconds. No request of the host starts before then (a 429, a Crawl-delay).
COOLDOWN = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local h = ARGV[2]
local hk = P .. 'h:' .. h
if redis.call('EXISTS', hk) == 0 then return {'ok'} end
local now = now_s()
local until_ = now + tonumber(ARGV[3])
if until_ > (tonumber(redis.call('HGET', hk, 'n')) or 0) then
  redis.call('HSET', hk, 'n', fmt(until_))
  sched(h, now)
end
return {'ok'}
"""
)

# ARGV: P, worker, handle, pickled request (with its new attempt count), delay seconds, callback.
RETRY = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local W = ARGV[2]
local handle = ARGV[3]
if redis.call('ZREM', P .. 'leases:' .. W, handle) == 0 then
  return {'lost'}
end
local now = now_s()
local id, r, h = split(handle)
free_slot(W, handle, h, now)
redis.call('HDEL', P .. 'req', id)
-- A new id and turn: the retry goes behind the requests of its callback.
local new = string.format('%012x', redis.call('HINCRBY', META, 'seq', 1))
redis.call('HSET', P .. 'req', new, ARGV[4])
local nr = string.format('%d', math.floor(r / SPLIT) * SPLIT + next_turn(ARGV[6]))
local delay = tonumber(ARGV[5])
if delay > 0 then
  redis.call('ZADD', P .. 'delayed', fmt(now + delay), new .. '|' .. nr .. '|' .. h)
else
  redis.call('ZADD', P .. 'q:' .. h, nr, new)
end
redis.call('HINCRBY', META, 'leased', -1)
redis.call('HINCRBY', META, 'pending', 1)
sched(h, now)
return with_view({'ok'}, W, now)
"""
)

# ARGV: P, worker, handle, reason.
FAIL = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local W = ARGV[2]
local handle = ARGV[3]
if redis.call('ZREM', P .. 'leases:' .. W, handle) == 0 then
  return {'lost'}
end
local now = now_s()
local id, _, h = split(handle)
free_slot(W, handle, h, now)
redis.call('HDEL', P .. 'req', id)
redis.call('HINCRBY', META, 'leased', -1)
redis.call('HINCRBY', META, 'failed', 1)
redis.call('HINCRBY', P .. 'failures', ARGV[4], 1)
sched(h, now)
return with_view({'ok'}, W, now)
"""
)

# ARGV: P, worker, handles...
RELEASE = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local W = ARGV[2]
local now = now_s()
local count = 0
for i = 3, #ARGV do
  if redis.call('ZSCORE', P .. 'leases:' .. W, ARGV[i]) then
    requeue(W, ARGV[i], now)
    count = count + 1
  end
end
return with_view({'ok', count}, W, now)
"""
)

# ARGV: P, worker, token, ttl seconds, ttl ms, handles... Pushes the deadline of the handles this
# process knows about; a lease it does not know (its reply was lost) expires and is reclaimed.
RENEW = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local W = ARGV[2]
local owner = P .. 'owner:' .. W
local current = redis.call('GET', owner)
if current and current ~= ARGV[3] then
  return {'fenced'}
end
redis.call('SET', owner, ARGV[3], 'PX', ARGV[5])
local deadline = fmt(now_s() + tonumber(ARGV[4]))
local key = P .. 'leases:' .. W
for i = 6, #ARGV do
  redis.call('ZADD', key, 'XX', deadline, ARGV[i])
end
index_expiry(W)
return {'ok'}
"""
)

# ARGV: P, most handles to take back. Expired leases of every worker go back to their queues.
# ``expiry`` indexes workers by their earliest lease deadline (it may be early, never late: a
# worker visited here for nothing is indexed again), so this costs nothing while none expired.
RECLAIM = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local now = now_s()
local budget = tonumber(ARGV[2])
local count = 0
for _, W in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiry', '-inf', fmt(now), 'LIMIT', 0, 100)) do
  if count >= budget then break end
  local key = P .. 'leases:' .. W
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', fmt(now), 'LIMIT', 0, budget - count)
  for _, handle in ipairs(expired) do
    requeue(W, handle, now)
    count = count + 1
  end
  index_expiry(W)
end
return {'ok', count}
"""
)

# ARGV: P, worker, token, ttl ms, commit seq, output offset, state, seeded, handle count,
# handles..., count of deferred requests, 8 x that many push arguments. All or nothing: if any
# handle is no longer leased to this worker, nothing is applied and the lost handles are
# returned. A commit seq already applied (a retry after a lost reply) is not applied again.
COMMIT = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local W = ARGV[2]
local owner = redis.call('GET', P .. 'owner:' .. W)
if owner and owner ~= ARGV[3] then
  return {'fenced'}
end
local wk = P .. 'w:' .. W
if redis.call('HGET', wk, 'seq') == ARGV[5] then
  return with_view({'ok'}, W, now_s())
end
local n = tonumber(ARGV[9])
local key = P .. 'leases:' .. W
local lost = {}
for i = 10, 9 + n do
  if not redis.call('ZSCORE', key, ARGV[i]) then
    lost[#lost + 1] = ARGV[i]
  end
end
if #lost > 0 then
  return {'lost', lost}
end
local now = now_s()
for i = 10, 9 + n do
  local id, _, h = split(ARGV[i])
  redis.call('ZREM', key, ARGV[i])
  if free_slot(W, ARGV[i], h, now) then
    sched(h, now)
  end
  redis.call('HDEL', P .. 'req', id)
end
if n > 0 then
  redis.call('HINCRBY', META, 'done', n)
  redis.call('HINCRBY', META, 'leased', -n)
end
push(11 + n, tonumber(ARGV[10 + n]), now)
redis.call('HSET', wk, 'offset', ARGV[6], 'state', ARGV[7], 'seq', ARGV[5])
if ARGV[8] == '1' then
  redis.call('HSET', META, 'seeded', 1)
end
if not owner then
  redis.call('SET', P .. 'owner:' .. W, ARGV[3], 'PX', ARGV[4])
end
return with_view({'ok'}, W, now)
"""
)

# ARGV: P, worker, token. A stopping worker gives back whatever it still holds (none of it was
# committed) and its id; nothing else of the shared state is touched.
CLOSE = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local W = ARGV[2]
local now = now_s()
local held = redis.call('ZRANGE', P .. 'leases:' .. W, 0, -1)
for _, handle in ipairs(held) do
  requeue(W, handle, now)
end
redis.call('DEL', P .. 'held:' .. W)
redis.call('ZREM', P .. 'expiry', W)
if redis.call('GET', P .. 'owner:' .. W) == ARGV[3] then
  redis.call('DEL', P .. 'owner:' .. W)
end
return {'ok', #held}
"""
)
