"""When a scheduler may expire other schedulers' run leases, so that a database outage is never mistaken
for dead schedulers.

A lease says "my holder is alive": the holder renews it every lease/3 seconds. While the database is
unreachable nobody can renew, so an outage longer than the lease leaves every lease in flight lapsed,
although the holders are alive and hold the real outcomes. Two rules keep those outcomes:

1. A holder that sees the database again after a failure renews its leases before anything else
   (the scheduler retries the renewal on every round, once a second, until it succeeds).
2. A sweeper expires leases only after one full lease period of its own unbroken database access: from
   its first successful statement after start-up, after its last failed one, or after a silence longer
   than MAX_SILENCE of a lease between two successful statements.

Why that suffices: a lease lapses in an outage only if the outage lasts about two thirds of a lease or
more (its holder renewed it at most a third of a lease before). Every sweeper is then either refused by
the database (its gate closes) or silent for that long: it slept through the outage, or its statement
waited for a pooled connection until the database came back, and the pool's health check handed it a
fresh session, so that nothing failed. Both restart the unbroken stretch no earlier than the database's
return at T, so no lease is expired before T + lease. A holder alive at T renews within about a second of
T, well inside that period (the scheduler's own connection is not pooled, so nothing delays its
reconnect), and its leases then run from that renewal. A holder that is really gone never
renews, and its runs are finished one lease period later than they would otherwise be. A scheduler that
sees leases in flight therefore reads the database at least every LOOK_EVERY of a lease, so that in normal
operation its access stays unbroken. (A fault that leaves a sweeper's session intact while the holder's
fails, a partition, is not an outage of the database: there the sweeper is right to expire the silent
holder.)
"""

from __future__ import annotations

# Fractions of a lease. A silence at least MAX_SILENCE long ends the unbroken stretch; it must stay below the
# shortest outage that can lapse a lease (2/3), and above LOOK_EVERY plus a slow round on a loaded machine.
MAX_SILENCE = 0.6
LOOK_EVERY = 0.25


class LeaseSweepGate:
    """Tracks this scheduler's unbroken database access; times are monotonic seconds."""

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self._connected_since: float | None = None
        self._last_answer: float | None = None

    def database_failed(self) -> None:
        self._connected_since = None

    def database_answered(self, at: float) -> None:
        silent = self._last_answer is not None and at - self._last_answer >= MAX_SILENCE * self.lease_seconds
        if self._connected_since is None or silent:
            self._connected_since = at
        self._last_answer = at

    def seconds_until_open(self, at: float) -> float | None:
        """0 when sweeping is allowed, else how long until it is; None while the database is failing."""
        if self._connected_since is None:
            return None
        return max(0.0, self._connected_since + self.lease_seconds - at)

    def look_every(self) -> float:
        """The longest sleep while leases are in flight, so that normal operation is never a silence."""
        return LOOK_EVERY * self.lease_seconds
