"""Key names of the Redis store, laid out for Redis Cluster (and the same on a standalone server).

Redis Cluster runs a multi-key command or a Lua script only if all its keys hash to one slot, and
hashes only the part of a key between the first `{` and the next `}` when there is one (a hash tag:
https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags). So:

- what belongs to one connection shares the tag `{c:<id>}`: its record, token hash, run index and
  fingerprints, changed together by one script;
- the schedule is split into `shards` due sets, each with its own tag `{due:<k>}`: shard k holds the
  entries (one hash, `entries`, a field per connection), the `due` and `od` (on demand) queues and
  the `leases` of the connections whose id hashes to k (CRC-32 mod `shards`), so every schedule
  script touches one shard's slot, and the four keys it touches are fixed;
- everything else is one key per call (run records, OAuth state, references, locks, documents,
  counters, the indexes of connections (all, per conversation, per Teams tenant), the run-event
  stream), updated apart from the scripts.

Scripts never build a key name from data: every key they touch is passed in KEYS (the cluster
client routes a script by its keys, and Redis checks them against the slot).
The shard count must stay the same for the life of the data (entries would sit in the wrong shard).
"""

from __future__ import annotations

import json
import zlib

DEFAULT_DUE_SHARDS = 16


def shard_of(connection_id: str, shards: int) -> int:
    """The due-set shard of a connection: stable across processes and restarts (not `hash()`)."""
    return zlib.crc32(connection_id.encode("utf-8")) % shards


class Keys:
    """Every key name under `prefix` (which must not contain `{`: it would become the hash tag)."""

    def __init__(self, prefix: str, shards: int = DEFAULT_DUE_SHARDS) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the Redis key prefix must not contain { or } (they make hash tags)")
        if shards < 1:
            raise ValueError("the number of due-set shards must be at least 1")
        self.prefix = prefix
        self.shards = shards

    # One connection's slot.
    def _c(self, connection_id: str, what: str) -> str:
        return f"{self.prefix}{{c:{connection_id}}}:{what}"

    def conn(self, connection_id: str) -> str:
        return self._c(connection_id, "conn")

    def tok(self, connection_id: str) -> str:
        return self._c(connection_id, "tok")

    def runs(self, connection_id: str) -> str:
        return self._c(connection_id, "runs")

    def fpi(self, connection_id: str) -> str:
        """The set of entities with fingerprints (names, not keys)."""
        return self._c(connection_id, "fpi")

    def fp(self, connection_id: str, entity: str) -> str:
        return self._c(connection_id, "fp:" + entity)

    @property
    def tok_pattern(self) -> tuple[str, str]:
        """What a token hash's key starts and ends with (the connection id is between)."""
        return f"{self.prefix}{{c:", "}:tok"

    # The schedule's shards.
    def shard(self, connection_id: str) -> int:
        return shard_of(connection_id, self.shards)

    def _s(self, k: int, what: str) -> str:
        return f"{self.prefix}{{due:{k}}}:{what}"

    def queues(self, k: int) -> list[str]:
        """due, od, leases and entries of shard k: the KEYS of every schedule script."""
        return [self._s(k, "due"), self._s(k, "od"), self._s(k, "leases"), self._s(k, "entries")]

    # One key per call.
    def conns(self) -> str:
        return f"{self.prefix}conns:"  # the name of the first layout, kept

    def conv(self, conversation_key: str) -> str:
        return f"{self.prefix}conns:conv:{conversation_key}"

    def tenant(self, teams_tenant_id: str) -> str:
        """The connections of one Teams tenant, scored like `conns()`."""
        return f"{self.prefix}conns:tenant:{teams_tenant_id}"

    def tenants_indexed(self) -> str:
        """Set once every connection older than the tenant indexes is in its index."""
        return f"{self.prefix}conns:tenants-indexed"

    def run(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}"

    def events(self) -> str:
        return f"{self.prefix}run-events"

    def plain(self, kind: str, name: str) -> str:
        """state, ref, lock, doc, ctr: `<prefix><kind>:<name>` (the names of the first layout)."""
        return f"{self.prefix}{kind}:{name}"

    # The first layout (standalone only), for `bot.storage.redis_migrate`.
    def v1(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}:{name}"

    def v1_fp(self, connection_id: str, entity: str) -> str:
        return self.v1("fp", json.dumps([connection_id, entity]))
