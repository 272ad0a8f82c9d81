from __future__ import annotations

import hashlib
import secrets

from django.db import models


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OwnerApiToken(models.Model):
    """An owner-scoped API token. Only the SHA-256 digest is stored; the token is shown once."""

    digest = models.CharField(max_length=64, unique=True)
    owner_id = models.CharField(max_length=128, db_index=True)
    label = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token for {self.owner_id}"

    @classmethod
    def issue(cls, owner_id: str, label: str = "") -> tuple[OwnerApiToken, str]:
        token = "uat_" + secrets.token_urlsafe(32)
        return cls.objects.create(digest=token_digest(token), owner_id=owner_id, label=label), token
