"""The lease sweep gate: a scheduler expires leases only after a full lease period of unbroken database
access, counted from its first answer after start-up or after its last failure."""

from __future__ import annotations

from scheduling.lease_sweep_gate import LeaseSweepGate


def test_a_scheduler_that_has_not_reached_the_database_yet_never_sweeps():
    assert LeaseSweepGate(30).seconds_until_open(1000.0) is None


def test_the_gate_opens_one_lease_period_after_the_first_answer():
    gate = LeaseSweepGate(30)
    gate.database_answered(100.0)
    gate.database_answered(110.0)  # later answers do not move the start of the unbroken stretch
    assert gate.seconds_until_open(120.0) == 10.0
    assert gate.seconds_until_open(130.0) == 0.0


def test_a_failure_closes_the_gate_until_a_full_period_after_the_database_answers_again():
    gate = LeaseSweepGate(30)
    gate.database_answered(0.0)
    assert gate.seconds_until_open(500.0) == 0.0
    gate.database_failed()
    assert gate.seconds_until_open(501.0) is None
    gate.database_answered(560.0)  # the outage ends: holders get a whole lease period to renew
    assert gate.seconds_until_open(570.0) == 20.0 and gate.seconds_until_open(590.0) == 0.0


def test_a_silence_as_long_as_an_outage_that_lapses_a_lease_restarts_the_unbroken_stretch():
    # A sweeper that slept through an outage, or whose statement waited for a pooled connection until the
    # database came back (the pool's health check then hands it a fresh session), sees no failure at all.
    gate = LeaseSweepGate(30)
    gate.database_answered(0.0)
    gate.database_answered(7.0)
    assert gate.seconds_until_open(40.0) == 0.0
    gate.database_answered(40.0 + 0.6 * 30)  # silent for 0.6 of a lease: less than any lapsing outage
    assert gate.seconds_until_open(58.0) == 30.0


def test_answers_at_the_look_cadence_keep_the_stretch_unbroken():
    gate = LeaseSweepGate(3)
    for step in range(10):
        gate.database_answered(step * gate.look_every() * 1.5)  # even 1.5 x late, on a loaded machine
    assert gate.seconds_until_open(10.0) == 0.0
