"""Inside a running task: the task itself, from the launcher's environment.

The launcher starts a task's process with COPAL_DB (or COPAL_BROKER_URL
and the credentials' variables on a remote node), COPAL_TASK_ID,
COPAL_TASK_UUID, COPAL_WORKFLOW, COPAL_ATTEMPT and, in a stage,
COPAL_LEASE_ID (launcher/src/spawn.c).
"""

import os


def in_task() -> bool:
    """Whether this process runs as a task started by a launcher."""
    return bool(os.environ.get("COPAL_TASK_ID"))


def current_job():
    """The :class:`copal.Job` this process runs as (read from the broker).

    Raises RuntimeError outside a task (COPAL_TASK_ID unset). Its
    ``spawn_child(...)`` adds tasks that wait for it (a dynamic DAG) and
    ``kill()`` kills it and its descendants.
    """
    from .models import Job
    v = os.environ.get("COPAL_TASK_ID", "")
    if not v:
        raise RuntimeError("COPAL_TASK_ID is not set: current_job() works "
                           "inside a task started by a copal launcher")
    try:
        tid = int(v)
    except ValueError:
        raise RuntimeError("COPAL_TASK_ID=%r is not a task id" % v) from None
    return Job.objects.get(id=tid)
