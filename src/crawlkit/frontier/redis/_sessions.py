"""The shared pool of sessions of a Redis crawl: every change is one atomic Lua script.

A session is leased to one worker at a time. The worker uses it with no round trip to Redis and
syncs now and then (``SYNC``): it writes the documents of the sessions that changed, retires the
ones a site saw through, gives back what it holds beyond its share, renews its leases and takes
free sessions, or new places in the pool, up to its share. A retired session is deleted from the
pool for every worker, whoever holds it. A worker that dies stops renewing; when its leases
expire any worker's sync puts its sessions back, free, with their last synced documents.

Keys under the job's prefix ``P`` (so that ``crawlkit reset`` and ``--fresh`` delete them with the
rest of the job):

* ``P s:live`` (hash): every live session id -> the worker holding it ('' when free).
* ``P s:doc`` (hash): session id -> its last synced document (JSON: proxy without its password,
  header profile, creation time, uses, score, cookies). A live session without one is a new place
  whose worker has not synced it yet; if that worker dies, the place is dropped, not handed on.
* ``P s:free`` (sorted set): free sessions by the time they were given back (oldest taken first).
* ``P s:leases`` (sorted set): held sessions by lease deadline.
* ``P s:workers`` (sorted set): workers by their last sync; those within one lease time are live.
* ``P s:retired`` (hash): sessions retired, by reason, over the whole crawl.
* ``P meta`` field ``sseq``: the last session id given (ids are never reused).
"""

from __future__ import annotations

import time

from ...errors import CommitError
from .._sessionsync import SessionSync, SessionSyncReply
from ._conn import Scripts
from ._lua import _PRELUDE

__all__ = ["SYNC_SESSIONS", "RedisSessionStore"]

# ARGV: P, worker, token, ttl seconds, size, one each (0/1), want, may reclaim (0/1), leaving
# (0/1), then four counted lists: retired (id, reason)..., held ids..., documents (id, doc)...,
# released ids.... Replies {'fenced'}, or {'ok', share, live workers, lost ids, claimed (id, doc
# or '')}.
SYNC_SESSIONS = (
    _PRELUDE
    + r"""
if gone() then return {'gone'} end
local W = ARGV[2]
local owner = redis.call('GET', P .. 'owner:' .. W)
if owner and owner ~= ARGV[3] then
  return {'fenced'}
end
local LIVE, DOC, FREE = P .. 's:live', P .. 's:doc', P .. 's:free'
local LEASES, WORKERS = P .. 's:leases', P .. 's:workers'
local now = now_s()
local ttl = tonumber(ARGV[4])
local deadline = fmt(now + ttl)
local i = 10

-- Retired first, whoever holds them: a site that saw through a session saw it for everyone.
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local sid, why = ARGV[i], ARGV[i + 1]; i = i + 2
  if redis.call('HDEL', LIVE, sid) == 1 then
    redis.call('HDEL', DOC, sid)
    redis.call('ZREM', FREE, sid)
    redis.call('ZREM', LEASES, sid)
    redis.call('HINCRBY', P .. 's:retired', why, 1)
  end
end

local lost = {}
local mine = 0
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local sid = ARGV[i]; i = i + 1
  if redis.call('HGET', LIVE, sid) == W then
    redis.call('ZADD', LEASES, deadline, sid)
    mine = mine + 1
  else
    lost[#lost + 1] = sid
  end
end

n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local sid, doc = ARGV[i], ARGV[i + 1]; i = i + 2
  if redis.call('HGET', LIVE, sid) == W then
    redis.call('HSET', DOC, sid, doc)
  end
end

-- A place never synced has nothing to hand on: it is dropped, and a new session may take it.
local function set_free(sid)
  redis.call('ZREM', LEASES, sid)
  if redis.call('HEXISTS', DOC, sid) == 1 then
    redis.call('HSET', LIVE, sid, '')
    redis.call('ZADD', FREE, fmt(now), sid)
  else
    redis.call('HDEL', LIVE, sid)
  end
end

n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local sid = ARGV[i]; i = i + 1
  if redis.call('HGET', LIVE, sid) == W then
    set_free(sid)
  end
end

if ARGV[8] == '1' then
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', fmt(now), 'LIMIT', 0, 1000)) do
    set_free(sid)
  end
end

if ARGV[9] == '1' then
  redis.call('ZREM', WORKERS, W)
else
  redis.call('ZADD', WORKERS, fmt(now), W)
end
redis.call('ZREMRANGEBYSCORE', WORKERS, '-inf', fmt(now - 10 * ttl))
local workers = redis.call('ZCOUNT', WORKERS, fmt(now - ttl), '+inf')
local size = tonumber(ARGV[5])
if ARGV[6] == '1' and workers > size then
  size = workers
end
local share = math.ceil(size / math.max(workers, 1))
local want = math.min(tonumber(ARGV[7]), share - mine)

local claimed = {}
if want > 0 then
  for _, sid in ipairs(redis.call('ZRANGE', FREE, 0, want - 1)) do
    redis.call('ZREM', FREE, sid)
    redis.call('HSET', LIVE, sid, W)
    redis.call('ZADD', LEASES, deadline, sid)
    claimed[#claimed + 1] = sid
    claimed[#claimed + 1] = redis.call('HGET', DOC, sid) or ''
    want = want - 1
  end
  while want > 0 and redis.call('HLEN', LIVE) < size do
    local sid = 's' .. redis.call('HINCRBY', META, 'sseq', 1)
    redis.call('HSET', LIVE, sid, W)
    redis.call('ZADD', LEASES, deadline, sid)
    claimed[#claimed + 1] = sid
    claimed[#claimed + 1] = ''
    want = want - 1
  end
end
return {'ok', share, workers, lost, claimed}
"""
)


class RedisSessionStore:
    """One worker's side of the shared pool, on its frontier's connection and identity.

    ``sync()`` is one script. ``budget`` bounds how long it waits for an unreachable Redis
    (None: the frontier's ``redis_retry_timeout``, as a commit does). A worker takes expired
    leases back only once it has been connected for a whole lease time, as the frontier does.
    """

    def __init__(self, scripts: Scripts, worker_id: str, token: str, lease_ttl: float) -> None:
        self._redis = scripts
        self._worker = worker_id
        self._token = token
        self._ttl = lease_ttl
        scripts.register("sync_sessions", SYNC_SESSIONS)

    @property
    def lease_ttl(self) -> float:
        return self._ttl

    async def sync(self, sync: SessionSync, budget: float | None = None) -> SessionSyncReply:
        redis = self._redis
        may_reclaim = redis.outage_since is None and time.monotonic() - redis.healthy_since >= self._ttl
        args: list[bytes | str | int] = [
            self._worker,
            self._token,
            repr(float(self._ttl)),
            sync.size,
            int(sync.one_each),
            sync.want,
            int(may_reclaim),
            int(sync.leaving),
            len(sync.retired),
        ]
        for sid, why in sync.retired.items():
            args += [sid, why]
        args.append(len(sync.held))
        args += sync.held
        args.append(len(sync.documents))
        for sid, document in sync.documents.items():
            args += [sid, document]
        args.append(len(sync.released))
        args += sync.released
        reply = await redis.run("sync_sessions", args, budget)
        if reply[0] == b"fenced":
            raise CommitError(f"worker id {self._worker!r} was taken over by another process; this one stops")
        _, share, workers, lost, claimed = reply
        return SessionSyncReply(
            lost=[sid.decode() for sid in lost],
            claimed=[(claimed[k].decode(), claimed[k + 1] or None) for k in range(0, len(claimed), 2)],
            share=int(share),
            workers=int(workers),
        )
