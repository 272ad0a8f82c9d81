from .events import LifecycleEvent, WorkerPresence
from .heartbeats import HeartbeatRun, HeartbeatSession, SystemEvent, WakeRequest
from .jobs import CronJob, MissedPolicy, OverlapPolicy, Priority, ScheduleKind, WakeMode
from .runs import ACTIVE_RUN_STATUSES, TERMINAL_RUN_STATUSES, CronRun, RunReason, RunStatus
from .stasis import Notification, StasisEntry, StasisStatus

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "TERMINAL_RUN_STATUSES",
    "CronJob",
    "CronRun",
    "HeartbeatRun",
    "HeartbeatSession",
    "LifecycleEvent",
    "MissedPolicy",
    "Notification",
    "OverlapPolicy",
    "Priority",
    "RunReason",
    "RunStatus",
    "ScheduleKind",
    "StasisEntry",
    "StasisStatus",
    "SystemEvent",
    "WakeMode",
    "WakeRequest",
    "WorkerPresence",
]
