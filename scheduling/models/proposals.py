from __future__ import annotations

import secrets

from django.db import models


def new_proposal_id() -> str:
    return "prop_" + secrets.token_hex(8)


class ProposalStatus(models.TextChoices):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


class ChangeProposal(models.Model):
    """A calendar change request parsed into either a field patch (`changes`) or an action, waiting for
    the operator to confirm it. Confirming applies it through the same services as the API; a proposal
    is decided once (a second confirm is a conflict)."""

    proposal_id = models.CharField(primary_key=True, max_length=40, default=new_proposal_id, editable=False)
    event_id = models.CharField(max_length=300, db_index=True)
    source = models.CharField(max_length=10)
    source_ref = models.CharField(max_length=128)
    owner_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    instruction = models.CharField(max_length=500)
    changes = models.JSONField(null=True, blank=True)
    action = models.CharField(max_length=32, blank=True, default="")
    run_at = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    summary = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=ProposalStatus.choices, default=ProposalStatus.PENDING)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.proposal_id} {self.event_id}: {self.instruction[:40]} ({self.status})"
