from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db import models, transaction
from django.dispatch import Signal

# Sent inside a RecordedModel's save block when no receiver appended an event for it. The models never
# import the event log (it imports them); `scheduling.signals` answers this by waking the schedulers.
saved_without_event = Signal()


class RecordedModel(models.Model):
    """A domain row whose every save and delete appends a lifecycle event (see scheduling.signals).

    `save()` and `delete()` open their own atomic block: Django sends post_save/post_delete *after* its
    own write statement, so without this a save in autocommit mode (shell, a script) would commit the row
    and the event in two transactions, and a crash between them would lose the event.
    """

    # Set per instance by save() and from_db(); declared here for the type checker only.
    _event_appended: bool
    _loaded_status: str | None

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._event_appended = False
        # savepoint=False: inside a service's transaction a savepoint would cost two more round trips
        # per save (SAVEPOINT, RELEASE) and buys nothing; a failed save fails that whole transaction.
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            super().save(*args, **kwargs)
            if not self._event_appended:
                saved_without_event.send(sender=type(self), instance=self)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            return super().delete(*args, **kwargs)

    @classmethod
    def from_db(
        cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any
    ) -> RecordedModel:
        instance = super().from_db(db, field_names, values, **kwargs)
        # Remember the loaded status so the signal handler can tell a transition from a re-save.
        instance._loaded_status = getattr(instance, "status", None)
        return instance
