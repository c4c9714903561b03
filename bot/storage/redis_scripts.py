"""The Lua scripts behind every atomic read-modify-write of `bot.storage.redis.RedisStore`.

Each script runs as one unit on the server, so several processes never see a half-made change: a
connection created or saved at one version, a run's index capped, a lock taken or refreshed, a
document written at its eTag, a counter started with its expiry, and every step of the schedule (see
`_SCHEDULE_LIB`). Every key a script touches comes in KEYS and all of them share one hash slot (see
`bot.storage.redis_keys`), so each script runs unchanged on Redis Cluster: none builds a key name
(the cluster client routes a script by its KEYS; and https://redis.io/docs/latest/commands/eval/: "all
names of keys that a script accesses must be explicitly provided as input key arguments").
Where a script must touch keys it only learns of by reading (the fingerprint maps of a
connection), the caller passes the keys it expects and the script refuses (returns -1) if the
index names others: the caller reads again and retries. `SCRIPTS` names them for the store, which
registers them with redis-py once per client.
"""

from __future__ import annotations


def _with_schedule_lib(body: str) -> str:
    """A schedule script: the shared Lua functions (and `now` from the server's clock), then `body`."""
    return _SCHEDULE_LIB + body


# KEYS: conn. ARGV: JSON.
_CREATE_CONNECTION = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 1 end
return 0
"""
# KEYS: conn. ARGV: expected version, new JSON. Returns {1, the conversation key it had} or 0.
_SAVE_CONNECTION = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local old = cjson.decode(current)
if tonumber(old['version']) ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return {1, old['conversation_key']}
"""
# Is every member of the set KEYS[i] among ARGV (the entities whose keys the caller passed)?
_EXPECTED_LIB = """
local function expected(set_key)
  local given = {}
  for _, name in ipairs(ARGV) do given[name] = true end
  for _, name in ipairs(redis.call('SMEMBERS', set_key)) do
    if not given[name] then return false end
  end
  return true
end
"""
# KEYS: conn, tok, runs, fpi, then the fingerprint maps of the entities in ARGV.
# Returns {-1} (fpi names other entities: read again), or {1, conversation key or '', run ids,
# Teams tenant or ''}.
_DELETE_CONNECTION = (
    _EXPECTED_LIB
    + """
if not expected(KEYS[4]) then return {-1} end
local current = redis.call('GET', KEYS[1])
local conversation = ''
local tenant = ''
if current then
  local record = cjson.decode(current)
  conversation = record['conversation_key']
  tenant = record['teams_tenant_id'] or ''
end
local runs = redis.call('ZRANGE', KEYS[3], 0, -1)
redis.call('DEL', unpack(KEYS))
return {1, conversation, runs, tenant}
"""
)
# KEYS: runs. ARGV: started us, id, cap. Returns the ids dropped from the index (the caller deletes
# their records, which live under their own keys).
_INDEX_RUN = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if extra <= 0 then return {} end
local dropped = redis.call('ZRANGE', KEYS[1], 0, extra - 1)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
return dropped
"""
# KEYS: the entity's map, fpi. ARGV: entity, then field, value pairs. Replaces the whole map;
# HSET in chunks (Lua's unpack stops at a few thousand values).
_PUT_FINGERPRINTS = """
redis.call('DEL', KEYS[1])
if #ARGV < 3 then redis.call('SREM', KEYS[2], ARGV[1]) return 1 end
for i = 2, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""
# KEYS: fpi, then the maps of the entities in ARGV. 0: fpi names others (read again).
_DELETE_FINGERPRINTS = (
    _EXPECTED_LIB
    + """
if not expected(KEYS[1]) then return 0 end
redis.call('DEL', unpack(KEYS))
return 1
"""
)
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
# A counter's expiry is set when it is created and never pushed back.
_INCR_COUNTER = """
local value = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return value
"""
# Compare and set: replace the value only if it is still the one read.
_SWAP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""

# The schedule, in shards (bot.storage.redis_keys). KEYS[1..4] of every schedule script are one
# shard's: `due` and `od` (on demand, claimed first) hold unleased due entries by due time, `leases`
# leased ones by lease end, and `entries` (a hash: connection id -> JSON) the entries themselves: a
# due time and on-demand flag, a lease (owner, end) while claimed -- `due` then is the time that was
# claimed -- and a pending due time for what was scheduled during the lease. An entry is a field of
# the shard's hash rather than a key of its own, so a script reaches any entry of its shard without
# building a key name. Times are microseconds since the epoch, kept as strings (cjson would round
# them to 14 digits). The same rules as bot.storage.common (merge_due, earliest_due,
# ScheduleEntry.settled).
_SCHEDULE_LIB = """
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function fmt(n) return string.format('%.0f', n) end
local function load(id)
  local raw = redis.call('HGET', KEYS[4], id)
  local e = {}
  if not raw then return e end
  local v = cjson.decode(raw)
  if v.due then e.due = tonumber(v.due); e.od = (v.od == '1') end
  if v.owner then e.owner = v.owner; e.untl = tonumber(v.lease) end
  if v.pdue then e.pdue = tonumber(v.pdue); e.pod = (v.pod == '1') end
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
local function store(id, e)
  redis.call('ZREM', KEYS[1], id); redis.call('ZREM', KEYS[2], id); redis.call('ZREM', KEYS[3], id)
  local v, any = {}, false
  if e.due ~= nil then v.due = fmt(e.due); v.od = e.od and '1' or '0'; any = true end
  if e.owner ~= nil then v.owner = e.owner; v.lease = fmt(e.untl); any = true end
  if e.pdue ~= nil then v.pdue = fmt(e.pdue); v.pod = e.pod and '1' or '0'; any = true end
  if not any then redis.call('HDEL', KEYS[4], id) return end
  redis.call('HSET', KEYS[4], id, cjson.encode(v))
  if e.owner ~= nil then redis.call('ZADD', KEYS[3], fmt(e.untl), id)
  elseif e.due ~= nil then redis.call('ZADD', e.od and KEYS[2] or KEYS[1], fmt(e.due), id) end
end
local now = now_us()
"""
# One entry: ARGV[1] its connection id.
_SCHEDULE = _with_schedule_lib(
    """
local e = settle(load(ARGV[1]), now)
local nd, no = tonumber(ARGV[2]), ARGV[3] == '1'
if leased(e, now) then e.pdue, e.pod = merge(e.pdue, e.pod, nd, no) else e.due, e.od = merge(e.due, e.od, nd, no) end
store(ARGV[1], e)
return 1
"""
)
_UNSCHEDULE = _with_schedule_lib(
    """
local e = load(ARGV[1])
if leased(e, now) then store(ARGV[1], {owner = e.owner, untl = e.untl}) else store(ARGV[1], {}) end
return 1
"""
)
# The connection is deleted: forget the entry, its lease included.
_DROP = _with_schedule_lib(
    """
store(ARGV[1], {})
return 1
"""
)
_EXTEND = _with_schedule_lib(
    """
local e = load(ARGV[1])
if not leased(e, now) or e.owner ~= ARGV[2] then return 0 end
e.untl = now + tonumber(ARGV[3])
store(ARGV[1], e)
return 1
"""
)
_RELEASE = _with_schedule_lib(
    """
local e = load(ARGV[1])
if not leased(e, now) or e.owner ~= ARGV[2] then return 0 end
local nd = nil
if ARGV[3] ~= '' then nd = tonumber(ARGV[3]) end
local d, o = earliest(e.pdue, e.pod, nd, false)
store(ARGV[1], {due = d, od = o})
return 1
"""
)
# Returns {due or false, lease owner or false} as seen now.
_INSPECT = _with_schedule_lib(
    """
local e = settle(load(ARGV[1]), now)
if leased(e, now) then return {e.pdue and fmt(e.pdue) or false, e.owner} end
return {e.due and fmt(e.due) or false, false}
"""
)
# Claim up to ARGV[4] entries of this shard due by the caller's now (ARGV[1]) for owner ARGV[2], for
# ARGV[3] us: expired leases are settled first (their runs are due again), then on demand, then by
# due time. Returns {lease end, {id, due, on demand}...}.
_CLAIM = _with_schedule_lib(
    """
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', fmt(now))) do
  store(id, settle(load(id), now))
end
local untl = now + tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local out, taken = {}, 0
for _, queue in ipairs({KEYS[2], KEYS[1]}) do
  if taken < limit then
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', queue, '-inf', ARGV[1], 'LIMIT', 0, limit - taken)) do
      local e = load(id)
      e.owner = ARGV[2]; e.untl = untl
      store(id, e)
      taken = taken + 1
      table.insert(out, id); table.insert(out, fmt(e.due)); table.insert(out, e.od and '1' or '0')
    end
  end
end
return {fmt(untl), out}
"""
)
# What a claimer needs to know of a shard to share a claim out (read only): how many leases have
# expired (by this server's clock), and the due times (only: cheap to send and parse) of the first
# ARGV[2] entries due by ARGV[1] in `od` and in `due`, comma-separated.
_PEEK = """
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
local function times(queue)
  local found = redis.call('ZRANGEBYSCORE', queue, '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
  local out = {}
  for i = 2, #found, 2 do table.insert(out, found[i]) end
  return table.concat(out, ',')
end
return {redis.call('ZCOUNT', KEYS[3], '-inf', now), times(KEYS[2]), times(KEYS[1])}
"""


SCRIPTS: dict[str, str] = {
    "create": _CREATE_CONNECTION,
    "save": _SAVE_CONNECTION,
    "delete": _DELETE_CONNECTION,
    "run": _INDEX_RUN,
    "fp_put": _PUT_FINGERPRINTS,
    "fp_delete": _DELETE_FINGERPRINTS,
    "lock": _ACQUIRE_LOCK,
    "unlock": _RELEASE_LOCK,
    "doc": _WRITE_DOCUMENT,
    "incr": _INCR_COUNTER,
    "swap": _SWAP,
    "schedule": _SCHEDULE,
    "unschedule": _UNSCHEDULE,
    "drop": _DROP,
    "extend": _EXTEND,
    "release": _RELEASE,
    "inspect": _INSPECT,
    "claim": _CLAIM,
    "peek": _PEEK,
}
