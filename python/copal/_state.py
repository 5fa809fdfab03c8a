"""Task and batch-job state names, from the schema."""

from . import copal_pb2 as pb

# STATES[n] is the name of TaskState n without "STATE_"; 0 is "NONE" as
# in the copal command (the to_state of a deleted task's last event)
STATES = tuple(
    "NONE" if n == 0 else pb.TaskState.Name(n)[len("STATE_"):]
    for n in range(max(pb.TaskState.values()) + 1))
BY_NAME = {s: n for n, s in enumerate(STATES) if n}

BJ_STATES = tuple(
    "" if n == 0 else pb.BatchJobState.Name(n)[len("BJ_"):]
    for n in range(max(pb.BatchJobState.values()) + 1))
BJ_BY_NAME = {s: n for n, s in enumerate(BJ_STATES) if s}
