"""copal from Python: tasks, apps, the event log, with Balsam's API shape.

    import copal
    copal.connect()                      # $COPAL_DB (or db=..., url=...)
    copal.App(name="sim", executable="/path/sim").save()
    a = copal.Job(name="a", workflow="w", application="sim")
    b = copal.Job(name="b", workflow="w", application="sim", parents=[a])
    copal.Job.objects.bulk_create([a, b])
    for j in copal.Job.objects.filter(workflow="w", state="JOB_FINISHED"):
        print(j.id, j.name, j.return_code)
    copal.Job.objects.filter(state="FAILED").update(state="RESTART_READY")
    for e in copal.EventLog.objects.filter(since="2026-12-01T00:00:00Z"):
        print(e.task_id, e.from_state, e.to_state)

Inside a task started by a launcher: ``copal.current_job()``, then
``job.spawn_child(name=..., application=...)`` or ``job.kill()``.

Requests go through copal's client library (libcopal-client.so, loaded
with ctypes): the same connection, credentials, TLS and resend rule as
the ``copal`` command. A request the broker refuses raises
:class:`CopalError` with the broker's message and status code; a bad
argument raises ValueError or TypeError before anything is sent.
"""

import threading

from ._wire import Connection
from .errors import CopalError, status_name
from .models import App, Job, BatchJob, Event, EventLog
from .query import QuerySet, EventQuery
from .task import current_job, in_task
from .analytics import throughput_report, utilization_report, available_nodes
from . import copal_pb2

__all__ = ["connect", "connection", "Connection", "CopalError", "App", "Job",
           "BatchJob", "Event", "EventLog", "QuerySet", "EventQuery",
           "current_job", "in_task", "throughput_report",
           "utilization_report", "available_nodes", "status_name",
           "copal_pb2", "STATES"]

from ._state import STATES

_default = None
_default_lock = threading.Lock()


def connect(db=None, url=None, **opts) -> Connection:
    """Connects to a database's broker and makes it the default
    connection of the objects (Job.objects, ...).

    ``db``: the database directory (default ``$COPAL_DB``); ``url``: a
    broker URL (``tls+tcp://host:port``; default ``$COPAL_BROKER_URL``,
    else the database's local socket). Over TLS the database's token and
    certificate are read from the directory (or ``token=``, ``tls_cert=``,
    ``tls_key=``, or ``$COPAL_TOKEN``, ``$COPAL_TLS_CERT``,
    ``$COPAL_TLS_KEY``). Other options: ``timeout_ms`` (per attempt),
    ``attempts``. Does not wait for the broker: the first request does.
    """
    global _default
    c = Connection(db=db, url=url, **opts)
    with _default_lock:
        old, _default = _default, c
    if old is not None:
        old.close()
    return c


def connection() -> Connection:
    """The default connection; made from the environment ($COPAL_DB,
    $COPAL_BROKER_URL) on first use if connect() was not called."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Connection()
        return _default


def disconnect():
    """Closes the default connection."""
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:
        old.close()
