"""Batch jobs: BatchJob and BatchJob.objects (split from models.py)."""

import typing

from . import copal_pb2 as pb
from . import _state


def _conn():
    from . import connection
    return connection()


class BatchJob:
    """A launcher job handed to a batch scheduler (copal submit-launch,
    copal service). Read only here; its state names are QUEUED, RUNNING,
    FINISHED, ... (schema BatchJobState without BJ_)."""

    _FIELDS = ("id", "scheduler", "scheduler_id", "project", "queue",
               "nodes", "wall_minutes", "job_mode", "wf_filter", "script",
               "message", "submitted_us", "updated_us", "started_us",
               "ended_us", "sched_flags", "origin", "sched_state")

    id: int
    scheduler: str
    scheduler_id: str
    project: str
    queue: str
    nodes: int
    wall_minutes: int
    job_mode: str
    wf_filter: str
    state: str

    def __init__(self, m):
        for f in self._FIELDS:
            setattr(self, f, getattr(m, f))
        self.state = _state.BJ_STATES[m.state] if m.state < len(
            _state.BJ_STATES) else str(m.state)

    def __repr__(self):
        return "BatchJob(id=%d, scheduler=%r, state=%r)" % (
            self.id, self.scheduler, self.state)


class BatchJobManager:
    """``BatchJob.objects``: ``all()`` and ``filter(state=)`` (a name or
    a list of names) return lists, by id."""

    def all(self) -> typing.List[BatchJob]:
        return self.filter()

    def filter(self, state=None) -> typing.List[BatchJob]:
        states = []
        if state is not None:
            for s in [state] if isinstance(state, str) else state:
                n = _state.BJ_BY_NAME.get(str(s).upper())
                if n is None:
                    raise ValueError("unknown batch job state %r (one of "
                                     "%s)" % (s, ", ".join(
                                         _state.BJ_STATES[1:])))
                states.append(n)
        rep = _conn().call("batch_list", pb.BatchJobListRequest(
            states=states))
        return [BatchJob(m) for m in rep.jobs]

    def get(self, id) -> BatchJob:
        for b in self.all():
            if b.id == id:
                return b
        raise LookupError("no batch job %r" % (id,))


BatchJob.objects = BatchJobManager()
