"""Rules both store backends follow: times as integer microseconds, and the schedule's merge rules.

SQLite applies the schedule rules in Python (`ScheduleEntry`, `merge_due`, `earliest_due`); Redis
applies the same rules inside its Lua scripts (`bot.storage.redis_scripts`), which mirror these
functions one for one, so a change here must be made there too. The contract suite runs the same
scheduling cases against both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

RUNS_KEPT = 200  # run records kept per connection; older ones are dropped when a run is saved
# Run events kept in the feed (about: Redis trims a stream by whole nodes with MAXLEN ~). At 100,000
# connections on a 10-minute plan (two events a run, 333 a second) that is five minutes of events, a
# few MB of Redis memory.
RUN_EVENTS_KEPT = 100_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch, exact (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


Due = tuple[int, bool]  # (due time in us, on demand)


def merge_due(current: Due | None, new: Due) -> Due:
    """What `schedule` does to an existing entry: move it, unless either side is an on-demand
    request, which is kept, at the earlier of the two times."""
    if current is None:
        return new
    if current[1] or new[1]:
        return min(current[0], new[0]), True
    return new


def earliest_due(a: Due | None, b: Due | None) -> Due | None:
    """Two requests folded into one entry: the earlier time, on demand if either was."""
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), a[1] or b[1]


@dataclass(frozen=True)
class ScheduleEntry:
    """One connection's place in the schedule. Lease times are microseconds on the store's clock."""

    due: Due | None = None  # while leased: the due time that was claimed
    owner: str | None = None
    lease_until: int | None = None
    pending: Due | None = None  # scheduled while leased: applies once the lease ends

    def leased(self, now: int) -> bool:
        return self.owner is not None and (self.lease_until or 0) > now

    def settled(self, now: int) -> ScheduleEntry:
        """With an expired lease dropped: the claimed run is due again, with what was scheduled meanwhile."""
        if self.owner is None or self.leased(now):
            return self
        return ScheduleEntry(due=earliest_due(self.due, self.pending))

    def empty(self) -> bool:
        """Nothing due, nothing leased, nothing pending: the entry need not be kept."""
        return self.due is None and self.owner is None and self.pending is None
