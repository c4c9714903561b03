"""The production store: Redis, shared by several bot and worker processes.

Every read-modify-write is one Lua script (or a WATCH/MULTI transaction where a value must be
re-serialised by pydantic), so it is atomic across processes: a connection version, a due-run
claim, a lock, a document eTag. Lease times come from the Redis server's own clock (TIME), so
processes on machines with skewed clocks still agree on when a lease ends. Scripts address a few
keys they derive from the prefix: this targets a standalone Redis (or one shard), not a cluster.

Layout under the prefix (default "xdc:"): conn:<id> JSON, conns and conns:conv:<key> (zsets by
creation time), tok:<id> (hash kind -> encrypted blob), state:<state> (JSON with a TTL),
ref:<key> JSON, run:<id> JSON and runs:<connection> (zset by start time, capped), fp:<json
[connection, entity]> (hash) and fpi:<connection> (set of those keys), sched:<id> (hash) with the
due, due:od and leases zsets, lock:<name>, doc:<key> (hash value, etag), ctr:<name>.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.errors import ConcurrencyError, StoreError
from bot.storage.base import Claim, Connection, ConversationRef, Document, RunRecord, TokenKind, utcnow

log = logging.getLogger(__name__)

RUNS_KEPT = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_CREATE_CONNECTION = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return 1
"""
# ARGV: expected version, new JSON, id, created us, prefix of the conversation indexes.
_SAVE_CONNECTION = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local old = cjson.decode(current)
if tonumber(old['version']) ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZREM', ARGV[5] .. old['conversation_key'], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
return 1
"""
# KEYS: conn, conns, tok, runs, fpi, sched, due, due:od, leases. ARGV: id, prefix.
_DELETE_CONNECTION = """
local current = redis.call('GET', KEYS[1])
if current then
  redis.call('ZREM', ARGV[2] .. 'conns:conv:' .. cjson.decode(current)['conversation_key'], ARGV[1])
end
for _, run in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do redis.call('DEL', ARGV[2] .. 'run:' .. run) end
for _, key in ipairs(redis.call('SMEMBERS', KEYS[5])) do redis.call('DEL', key) end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
for i = 7, 9 do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""
# ARGV: JSON, started us, id, cap, prefix of run keys.
_SAVE_RUN = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if extra > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do redis.call('DEL', ARGV[5] .. id) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
end
return 1
"""
_DELETE_FINGERPRINTS = """
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('DEL', key) end
redis.call('DEL', KEYS[1])
return 1
"""
_ACQUIRE_LOCK = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_WRITE_DOCUMENT = """
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'etag') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'value', ARGV[1], 'etag', ARGV[2])
return 1
"""

# The schedule. An entry (hash sched:<id>) has a due time and on-demand flag, a lease (owner,
# until) while claimed -- `due` then is the time that was claimed -- and a pending due time for
# what was scheduled during the lease. Unleased due entries sit in `due` or `due:od` (on demand,
# claimed first), leased ones in `leases` (by expiry). Times are microseconds since the epoch.
# The same rules as bot.storage.sqlite (merge_due, earliest_due, _Entry.settled).
_SCHEDULE_LIB = """
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function fmt(n) return string.format('%.0f', n) end
local function load(key)
  local v = redis.call('HMGET', key, 'due', 'od', 'owner', 'until', 'pdue', 'pod')
  local e = {}
  if v[1] then e.due = tonumber(v[1]); e.od = (v[2] == '1') end
  if v[3] then e.owner = v[3]; e.untl = tonumber(v[4]) end
  if v[5] then e.pdue = tonumber(v[5]); e.pod = (v[6] == '1') end
  return e
end
local function leased(e, now) return e.owner ~= nil and e.untl > now end
local function merge(d, o, nd, no)
  if d == nil then return nd, no end
  if o or no then return math.min(d, nd), true end
  return nd, no
end
local function earliest(d, o, d2, o2)
  if d == nil then return d2, o2 end
  if d2 == nil then return d, o end
  return math.min(d, d2), (o or o2)
end
local function settle(e, now)
  if e.owner == nil or leased(e, now) then return e end
  local d, o = earliest(e.due, e.od, e.pdue, e.pod)
  return {due = d, od = o}
end
local function store(key, id, e)
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], id); redis.call('ZREM', KEYS[2], id); redis.call('ZREM', KEYS[3], id)
  local f = {}
  if e.due ~= nil then table.insert(f, 'due'); table.insert(f, fmt(e.due)); table.insert(f, 'od'); table.insert(f, e.od and '1' or '0') end
  if e.owner ~= nil then table.insert(f, 'owner'); table.insert(f, e.owner); table.insert(f, 'until'); table.insert(f, fmt(e.untl)) end
  if e.pdue ~= nil then table.insert(f, 'pdue'); table.insert(f, fmt(e.pdue)); table.insert(f, 'pod'); table.insert(f, e.pod and '1' or '0') end
  if #f == 0 then return end
  redis.call('HSET', key, unpack(f))
  if e.owner ~= nil then redis.call('ZADD', KEYS[3], fmt(e.untl), id)
  elseif e.due ~= nil then redis.call('ZADD', e.od and KEYS[2] or KEYS[1], fmt(e.due), id) end
end
local now = now_us()
"""
# Every schedule script: KEYS due, due:od, leases, then the entry's hash; ARGV[1] its id.
_SCHEDULE = (
    _SCHEDULE_LIB
    + """
local e = settle(load(KEYS[4]), now)
local nd, no = tonumber(ARGV[2]), ARGV[3] == '1'
if leased(e, now) then e.pdue, e.pod = merge(e.pdue, e.pod, nd, no) else e.due, e.od = merge(e.due, e.od, nd, no) end
store(KEYS[4], ARGV[1], e)
return 1
"""
)
_UNSCHEDULE = (
    _SCHEDULE_LIB
    + """
local e = load(KEYS[4])
if leased(e, now) then store(KEYS[4], ARGV[1], {owner = e.owner, untl = e.untl}) else store(KEYS[4], ARGV[1], {}) end
return 1
"""
)
_EXTEND = (
    _SCHEDULE_LIB
    + """
local e = load(KEYS[4])
if not leased(e, now) or e.owner ~= ARGV[2] then return 0 end
e.untl = now + tonumber(ARGV[3])
store(KEYS[4], ARGV[1], e)
return 1
"""
)
_RELEASE = (
    _SCHEDULE_LIB
    + """
local e = load(KEYS[4])
if not leased(e, now) or e.owner ~= ARGV[2] then return 0 end
local nd = nil
if ARGV[3] ~= '' then nd = tonumber(ARGV[3]) end
local d, o = earliest(e.pdue, e.pod, nd, false)
store(KEYS[4], ARGV[1], {due = d, od = o})
return 1
"""
)
# Returns {due or false, lease owner or false} as seen now.
_INSPECT = (
    _SCHEDULE_LIB
    + """
local e = settle(load(KEYS[4]), now)
if leased(e, now) then return {e.pdue and fmt(e.pdue) or false, e.owner} end
return {e.due and fmt(e.due) or false, false}
"""
)
# ARGV: prefix of entry keys, caller's now (us), owner, lease (us), limit.
_CLAIM = (
    _SCHEDULE_LIB
    + """
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', fmt(now))) do
  store(ARGV[1] .. id, id, settle(load(ARGV[1] .. id), now))
end
local untl = now + tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local out, taken = {}, 0
for _, queue in ipairs({KEYS[2], KEYS[1]}) do
  if taken < limit then
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', queue, '-inf', ARGV[2], 'LIMIT', 0, limit - taken)) do
      local e = load(ARGV[1] .. id)
      e.owner = ARGV[3]; e.untl = untl
      store(ARGV[1] .. id, id, e)
      taken = taken + 1
      table.insert(out, id); table.insert(out, fmt(e.due)); table.insert(out, e.od and '1' or '0')
    end
  end
end
return {fmt(untl), out}
"""
)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch, exact (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(raw: object) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _where(url: str) -> str:
    """The server's address without credentials, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


@contextmanager
def _guard() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise StoreError(f"Redis store failed: {type(exc).__name__}: {exc}") from exc


class RedisStore:
    """Every store protocol of `bot.storage.base` on Redis, safe for several processes."""

    def __init__(self, client: Redis, prefix: str = "xdc:") -> None:
        self._r = client
        self.prefix = prefix
        scripts = {
            "create": _CREATE_CONNECTION,
            "save": _SAVE_CONNECTION,
            "delete": _DELETE_CONNECTION,
            "run": _SAVE_RUN,
            "fp_delete": _DELETE_FINGERPRINTS,
            "lock": _ACQUIRE_LOCK,
            "unlock": _RELEASE_LOCK,
            "doc": _WRITE_DOCUMENT,
            "schedule": _SCHEDULE,
            "unschedule": _UNSCHEDULE,
            "extend": _EXTEND,
            "release": _RELEASE,
            "inspect": _INSPECT,
            "claim": _CLAIM,
        }
        # Registered scripts are re-loaded by redis-py when the server answers NOSCRIPT (after a restart).
        self._scripts = {name: client.register_script(body) for name, body in scripts.items()}

    @classmethod
    async def open(cls, url: str, prefix: str = "xdc:") -> RedisStore:
        """Connect and check the server answers. Dropped connections are retried with backoff,
        so the store survives a server restart or failover."""
        client = Redis.from_url(
            url,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 8),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            socket_connect_timeout=5,
            socket_timeout=10,
            health_check_interval=15,
        )
        try:
            await client.ping()
        except RedisError as exc:
            await client.aclose()
            raise StoreError(f"cannot reach Redis at {_where(url)}: {type(exc).__name__}") from exc
        log.info("Redis store open at %s (prefix %r)", _where(url), prefix)
        return cls(client, prefix)

    def _k(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}:{name}"

    async def _run(self, script: str, keys: list[str], args: list[str | int | bytes]) -> Any:
        with _guard():
            return await self._scripts[script](keys=keys, args=args)

    # Connections.
    async def create_connection(self, connection: Connection) -> Connection:
        stored = connection.model_copy(update={"version": 1})
        keys = [self._k("conn", stored.id), self._k("conns"), self._k("conns:conv", stored.conversation_key)]
        args: list[str | int | bytes] = [stored.model_dump_json(), to_us(stored.created_at), stored.id]
        if not await self._run("create", keys, args):
            raise ConcurrencyError(f"connection {connection.id} already exists")
        return stored

    async def get_connection(self, connection_id: str) -> Connection | None:
        with _guard():
            raw = await self._r.get(self._k("conn", connection_id))
        return None if raw is None else Connection.model_validate_json(raw)

    async def save_connection(self, connection: Connection) -> Connection:
        stored = connection.model_copy(update={"version": connection.version + 1})
        keys = [self._k("conn", stored.id), self._k("conns"), self._k("conns:conv", stored.conversation_key)]
        args: list[str | int | bytes] = [
            connection.version,
            stored.model_dump_json(),
            stored.id,
            to_us(stored.created_at),
            self._k("conns:conv"),
        ]
        if not await self._run("save", keys, args):
            raise ConcurrencyError(
                f"connection {connection.id} changed or was deleted since version {connection.version}"
            )
        return stored

    async def list_connections(self, conversation_key: str | None = None) -> list[Connection]:
        index = self._k("conns") if conversation_key is None else self._k("conns:conv", conversation_key)
        with _guard():
            ids = await self._r.zrange(index, 0, -1)
            raws = await self._r.mget([self._k("conn", _text(i)) for i in ids]) if ids else []
        return [Connection.model_validate_json(raw) for raw in raws if raw is not None]

    async def delete_connection(self, connection_id: str) -> None:
        """Delete the connection and everything kept for it (tokens, runs, fingerprints, schedule)."""
        keys = [
            self._k("conn", connection_id),
            self._k("conns"),
            self._k("tok", connection_id),
            self._k("runs", connection_id),
            self._k("fpi", connection_id),
            self._k("sched", connection_id),
            self._k("due"),
            self._k("due:od"),
            self._k("leases"),
        ]
        await self._run("delete", keys, [connection_id, self.prefix])

    # Tokens.
    async def put_tokens(self, connection_id: str, kind: TokenKind, blob: bytes) -> None:
        with _guard():
            await self._r.hset(self._k("tok", connection_id), kind.value, bytes(blob))

    async def get_tokens(self, connection_id: str, kind: TokenKind) -> bytes | None:
        with _guard():
            raw = await self._r.hget(self._k("tok", connection_id), kind.value)
        return None if raw is None else bytes(raw) if isinstance(raw, bytes) else raw.encode()

    async def delete_tokens(self, connection_id: str, kind: TokenKind | None = None) -> None:
        with _guard():
            if kind is None:
                await self._r.delete(self._k("tok", connection_id))
            else:
                await self._r.hdel(self._k("tok", connection_id), kind.value)

    async def all_token_blobs(self) -> list[tuple[str, TokenKind, bytes]]:
        start = self._k("tok")
        found: list[tuple[str, TokenKind, bytes]] = []
        with _guard():
            async for key in self._r.scan_iter(match=_glob_escape(start) + "*", count=500):
                connection_id = _text(key)[len(start) :]
                for kind, blob in (await self._r.hgetall(key)).items():
                    found.append(
                        (
                            connection_id,
                            TokenKind(_text(kind)),
                            blob if isinstance(blob, bytes) else blob.encode(),
                        )
                    )
        return sorted(found)

    # OAuth state.
    async def put_state(self, state: str, payload: dict[str, Any], ttl_seconds: float) -> None:
        with _guard():
            await self._r.set(self._k("state", state), json.dumps(payload), px=_ms(ttl_seconds))

    async def take_state(self, state: str) -> dict[str, Any] | None:
        with _guard():
            raw = await self._r.getdel(self._k("state", state))
        return None if raw is None else dict(json.loads(raw))

    async def peek_state(self, state: str) -> dict[str, Any] | None:
        with _guard():
            raw = await self._r.get(self._k("state", state))
        return None if raw is None else dict(json.loads(raw))

    # Conversation references.
    async def save_reference(self, ref: ConversationRef) -> None:
        with _guard():
            await self._r.set(self._k("ref", ref.key), ref.model_dump_json())

    async def get_reference(self, key: str) -> ConversationRef | None:
        with _guard():
            raw = await self._r.get(self._k("ref", key))
        return None if raw is None else ConversationRef.model_validate_json(raw)

    async def mark_removed(self, key: str) -> None:
        name = self._k("ref", key)

        async def apply(pipe: Pipeline) -> None:
            raw = await pipe.get(name)
            if raw is None:
                return
            ref = ConversationRef.model_validate_json(raw).model_copy(
                update={"removed": True, "updated_at": utcnow()}
            )
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(name, ref.model_dump_json())

        with _guard():
            await self._r.transaction(apply, name)

    # Runs.
    async def save_run(self, run: RunRecord) -> None:
        keys = [self._k("run", run.id), self._k("runs", run.connection_id)]
        await self._run(
            "run", keys, [run.model_dump_json(), to_us(run.started_at), run.id, RUNS_KEPT, self._k("run")]
        )

    async def list_runs(self, connection_id: str, limit: int = 10) -> list[RunRecord]:
        if limit <= 0:
            return []
        with _guard():
            ids = await self._r.zrevrange(self._k("runs", connection_id), 0, limit - 1)
            raws = await self._r.mget([self._k("run", _text(i)) for i in ids]) if ids else []
        return [RunRecord.model_validate_json(raw) for raw in raws if raw is not None]

    async def get_run(self, run_id: str) -> RunRecord | None:
        with _guard():
            raw = await self._r.get(self._k("run", run_id))
        return None if raw is None else RunRecord.model_validate_json(raw)

    # Fingerprints.
    def _fp(self, connection_id: str, entity: str) -> str:
        # JSON keeps (connection, entity) unambiguous whatever characters the two contain.
        return self._k("fp", json.dumps([connection_id, entity]))

    async def get_fingerprints(self, connection_id: str, entity: str) -> dict[str, str]:
        with _guard():
            raw = await self._r.hgetall(self._fp(connection_id, entity))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def put_fingerprints(self, connection_id: str, entity: str, fingerprints: dict[str, str]) -> None:
        key, index = self._fp(connection_id, entity), self._k("fpi", connection_id)
        with _guard():
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if fingerprints:
                    mapping: dict[Any, Any] = dict(fingerprints)
                    pipe.hset(key, mapping=mapping)
                    pipe.sadd(index, key)
                else:
                    pipe.srem(index, key)
                await pipe.execute()

    async def delete_fingerprints(self, connection_id: str) -> None:
        await self._run("fp_delete", [self._k("fpi", connection_id)], [])

    # Schedule (see _SCHEDULE_LIB).
    def _sched_keys(self, connection_id: str) -> list[str]:
        return [self._k("due"), self._k("due:od"), self._k("leases"), self._k("sched", connection_id)]

    async def schedule(self, connection_id: str, due_at: datetime, *, on_demand: bool = False) -> None:
        """Set or move the due time; an on-demand request already waiting is kept (at the earlier time)."""
        args: list[str | int | bytes] = [connection_id, to_us(due_at), "1" if on_demand else "0"]
        await self._run("schedule", self._sched_keys(connection_id), args)

    async def unschedule(self, connection_id: str) -> None:
        """Forget the due time. A run in progress keeps its lease (so nothing else starts it);
        if that lease expires, the run is not due again."""
        await self._run("unschedule", self._sched_keys(connection_id), [connection_id])

    async def claim_due(self, now: datetime, owner: str, lease_seconds: float, limit: int) -> list[Claim]:
        if limit <= 0:
            return []
        keys = self._sched_keys("")[:3]
        args: list[str | int | bytes] = [
            self._k("sched"),
            to_us(now),
            owner,
            _ms(lease_seconds) * 1000,
            limit,
        ]
        until_raw, flat = await self._run("claim", keys, args)
        until = from_us(int(until_raw))
        return [
            Claim(_text(flat[i]), from_us(int(flat[i + 1])), owner, until, _text(flat[i + 2]) == "1")
            for i in range(0, len(flat), 3)
        ]

    async def extend_lease(self, connection_id: str, owner: str, lease_seconds: float) -> bool:
        args: list[str | int | bytes] = [connection_id, owner, _ms(lease_seconds) * 1000]
        return bool(await self._run("extend", self._sched_keys(connection_id), args))

    async def release(self, connection_id: str, owner: str, next_due: datetime | None) -> bool:
        """End our lease. The next due time is `next_due` or anything scheduled during the run,
        whichever is earlier (a request made during the run is never lost)."""
        following = "" if next_due is None else str(to_us(next_due))
        args: list[str | int | bytes] = [connection_id, owner, following]
        return bool(await self._run("release", self._sched_keys(connection_id), args))

    async def get_due(self, connection_id: str) -> datetime | None:
        """The next due time: while a run is leased, the one scheduled for after it (if any)."""
        due, _ = await self._run("inspect", self._sched_keys(connection_id), [connection_id])
        return None if due is None else from_us(int(due))

    async def lease_holder(self, connection_id: str) -> str | None:
        _, owner = await self._run("inspect", self._sched_keys(connection_id), [connection_id])
        return None if owner is None else _text(owner)

    # Locks.
    async def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take the lock, or refresh it if `owner` already holds it."""
        return bool(await self._run("lock", [self._k("lock", name)], [json.dumps(owner), _ms(ttl_seconds)]))

    async def release_lock(self, name: str, owner: str) -> None:
        await self._run("unlock", [self._k("lock", name)], [json.dumps(owner)])

    # Documents.
    async def read_documents(self, keys: list[str]) -> dict[str, Document]:
        if not keys:
            return {}
        with _guard():
            async with self._r.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(self._k("doc", key), ["value", "etag"])
                rows = await pipe.execute()
        return {
            key: Document(json.loads(value), _text(etag))
            for key, (value, etag) in zip(keys, rows, strict=True)
            if value is not None and etag is not None
        }

    async def write_document(self, key: str, value: dict[str, Any], expected_etag: str | None) -> str:
        """A missing document has no eTag: writing it with an expected eTag other than "*" conflicts."""
        etag = uuid.uuid4().hex
        expected = "" if expected_etag in (None, "*") else str(expected_etag)
        if not await self._run("doc", [self._k("doc", key)], [json.dumps(value), etag, expected]):
            raise ConcurrencyError(f"document {key!r} changed since it was read")
        return etag

    async def delete_documents(self, keys: list[str]) -> None:
        if keys:
            with _guard():
                await self._r.delete(*[self._k("doc", key) for key in keys])

    # Counters.
    async def incr_counter(self, name: str, ttl_seconds: float) -> int:
        key = self._k("ctr", name)
        with _guard():
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.pexpire(key, _ms(ttl_seconds), nx=True)
                value, _ = await pipe.execute()
        return int(value)

    # The store itself.
    async def ping(self) -> bool:
        try:
            return bool(await self._r.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self._r.aclose()

    async def dump_all(self) -> list[tuple[str, bytes]]:
        """Strings as stored; hashes, sets and sorted sets as JSON (token hashes: one blob per kind)."""
        dumped: list[tuple[str, bytes]] = []
        with _guard():
            async for raw_key in self._r.scan_iter(match=_glob_escape(self.prefix) + "*", count=500):
                key = _text(raw_key)
                kind = _text(await self._r.type(key))
                if kind == "string":
                    value = await self._r.get(key)
                    if value is not None:
                        dumped.append((key, value if isinstance(value, bytes) else value.encode()))
                elif kind == "hash" and key.startswith(self._k("tok")):
                    for field, blob in (await self._r.hgetall(key)).items():
                        dumped.append(
                            (f"{key}/{_text(field)}", blob if isinstance(blob, bytes) else blob.encode())
                        )
                elif kind == "hash":
                    fields = {_text(f): _text(v) for f, v in (await self._r.hgetall(key)).items()}
                    dumped.append((key, json.dumps(fields).encode()))
                elif kind == "zset":
                    members: list[Any] = list(await self._r.zrange(key, 0, -1, withscores=True))
                    dumped.append((key, json.dumps([[_text(m), s] for m, s in members]).encode()))
                elif kind == "set":
                    dumped.append(
                        (key, json.dumps(sorted(_text(m) for m in await self._r.smembers(key))).encode())
                    )
        return sorted(dumped)
