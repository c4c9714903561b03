"""The Lua scripts behind every atomic read-modify-write of `bot.storage.redis.RedisStore`.

Each script runs as one unit on the server, so several processes never see a half-made change: a
connection created or saved at one version, a run saved with its index capped, a lock taken or
refreshed, a document written at its eTag, and every step of the schedule (see `_SCHEDULE_LIB`).
`SCRIPTS` names them for `RedisStore`, which registers them with redis-py once per client.
"""

from __future__ import annotations


def _with_schedule_lib(body: str) -> str:
    """A schedule script: the shared Lua functions (and `now` from the server's clock), then `body`."""
    return _SCHEDULE_LIB + body


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
# The same rules as bot.storage.common (merge_due, earliest_due, ScheduleEntry.settled).
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
_SCHEDULE = _with_schedule_lib(
    """
local e = settle(load(KEYS[4]), now)
local nd, no = tonumber(ARGV[2]), ARGV[3] == '1'
if leased(e, now) then e.pdue, e.pod = merge(e.pdue, e.pod, nd, no) else e.due, e.od = merge(e.due, e.od, nd, no) end
store(KEYS[4], ARGV[1], e)
return 1
"""
)
_UNSCHEDULE = _with_schedule_lib(
    """
local e = load(KEYS[4])
if leased(e, now) then store(KEYS[4], ARGV[1], {owner = e.owner, untl = e.untl}) else store(KEYS[4], ARGV[1], {}) end
return 1
"""
)
_EXTEND = _with_schedule_lib(
    """
local e = load(KEYS[4])
if not leased(e, now) or e.owner ~= ARGV[2] then return 0 end
e.untl = now + tonumber(ARGV[3])
store(KEYS[4], ARGV[1], e)
return 1
"""
)
_RELEASE = _with_schedule_lib(
    """
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
_INSPECT = _with_schedule_lib(
    """
local e = settle(load(KEYS[4]), now)
if leased(e, now) then return {e.pdue and fmt(e.pdue) or false, e.owner} end
return {e.due and fmt(e.due) or false, false}
"""
)
# ARGV: prefix of entry keys, caller's now (us), owner, lease (us), limit.
_CLAIM = _with_schedule_lib(
    """
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


SCRIPTS: dict[str, str] = {
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
