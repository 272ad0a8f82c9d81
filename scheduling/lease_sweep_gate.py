"""When a scheduler may expire other schedulers' run leases, so that a database outage is never mistaken
for dead schedulers.

A lease says "my holder is alive": the holder renews it every lease/3 seconds. While the database is
unreachable nobody can renew, so an outage longer than the lease leaves every lease in flight lapsed,
although the holders are alive and hold the real outcomes. Two rules keep those outcomes:

1. A holder that sees the database again after a failure renews its leases before anything else
   (the scheduler retries the renewal on every round, once a second, until it succeeds).
2. A sweeper expires leases only after one full lease period of its own unbroken database access: from
   its first successful statement after start-up or after its last failed one.

Why that suffices: an outage (a restart, a stop/start, or a network fault that drops the sessions) ends
every session, so every scheduler's next statement fails and its gate closes; no sweeper can succeed
before the database is back at time T, so no lease is expired before T + lease. A holder alive at T
renews within about a second of T, well inside that period, and its leases then run from that renewal.
A holder that is really gone never renews, and its runs are finished one lease period later than they
would otherwise be. (A fault that leaves a sweeper's session intact while the holder's fails, a
partition, is not an outage of the database: there the sweeper is right to expire the silent holder.)
"""

from __future__ import annotations


class LeaseSweepGate:
    """Tracks this scheduler's unbroken database access; times are monotonic seconds."""

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self._connected_since: float | None = None

    def database_failed(self) -> None:
        self._connected_since = None

    def database_answered(self, at: float) -> None:
        if self._connected_since is None:
            self._connected_since = at

    def seconds_until_open(self, at: float) -> float | None:
        """0 when sweeping is allowed, else how long until it is; None while the database is failing."""
        if self._connected_since is None:
            return None
        return max(0.0, self._connected_since + self.lease_seconds - at)
