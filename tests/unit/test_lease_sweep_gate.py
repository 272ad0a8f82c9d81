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
