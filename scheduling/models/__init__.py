from .events import LifecycleEvent, WorkerPresence
from .heartbeats import HeartbeatRun, HeartbeatSession, SystemEvent, WakeRequest
from .jobs import CronJob, MissedPolicy, OverlapPolicy, Priority, ScheduleKind, WakeMode
from .metrics import RuntimeMetric
from .proposals import ChangeProposal, ProposalStatus
from .runs import ACTIVE_RUN_STATUSES, TERMINAL_RUN_STATUSES, CronRun, RunReason, RunStatus
from .stasis import Notification, StasisEntry, StasisStatus

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "TERMINAL_RUN_STATUSES",
    "ChangeProposal",
    "CronJob",
    "CronRun",
    "HeartbeatRun",
    "HeartbeatSession",
    "LifecycleEvent",
    "MissedPolicy",
    "Notification",
    "OverlapPolicy",
    "Priority",
    "ProposalStatus",
    "RunReason",
    "RuntimeMetric",
    "RunStatus",
    "ScheduleKind",
    "StasisEntry",
    "StasisStatus",
    "SystemEvent",
    "WakeMode",
    "WakeRequest",
    "WorkerPresence",
]
