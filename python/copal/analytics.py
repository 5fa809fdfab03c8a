"""Balsam-style analytics computed from the event log.

Each function returns plain lists (``times`` in epoch seconds and one
value per time), or numpy arrays when asked with ``as_numpy=True`` (numpy
is then needed; nothing here imports it otherwise). ``events`` is any
iterable of :class:`copal.Event` (``EventLog.objects.filter(...)``); by
default the whole log, or that of ``workflow``.
"""

from . import _state


def _events(events, workflow):
    if events is None:
        from .models import EventLog
        events = EventLog.objects.filter(workflow=workflow)
    return events


def _out(times, values, as_numpy):
    if as_numpy:
        import numpy
        return numpy.array(times), numpy.array(values)
    return times, values


def throughput_report(events=None, to_state="JOB_FINISHED", workflow=None,
                      as_numpy=False):
    """How many tasks had reached ``to_state``, after each time one did.

    Returns (times, counts): counts[i] tasks had entered ``to_state`` by
    times[i] (a task counted once per entry, as in Balsam).
    """
    target = _state.BY_NAME.get(str(to_state).upper())
    if target is None:
        raise ValueError("unknown task state %r" % (to_state,))
    times, counts = [], []
    n = 0
    for e in _events(events, workflow):
        if e._m.to_state == target:
            n += 1
            times.append(e.time_us / 1e6)
            counts.append(n)
    return _out(times, counts, as_numpy)


def _node_weights(task_ids):
    """num_nodes / node_packing_count of each task (one query per 10,000
    ids); a task deleted since counts as one node."""
    from .query import QuerySet
    from .models import _conn
    ids = sorted(task_ids)
    w = {}
    for i in range(0, len(ids), 10000):
        for j in QuerySet(_conn, {"id__in": ids[i:i + 10000]}).iterator(10000):
            w[j.id] = j.num_nodes / max(j.node_packing_count, 1)
    return w


def utilization_report(events=None, workflow=None, weights=None,
                       as_numpy=False):
    """Nodes busy running tasks over time (node-weighted, like Balsam's).

    A task counts ``num_nodes / node_packing_count`` nodes from the event
    that makes it RUNNING to the one that ends its run. ``weights``: a
    dict task id -> nodes, else read from the broker. Returns (times,
    busy_nodes), one entry per change.
    """
    running = _state.BY_NAME["RUNNING"]
    evs = [(e.time_us, e.task_id, e._m.from_state, e._m.to_state)
           for e in _events(events, workflow)
           if e._m.to_state == running or e._m.from_state == running]
    if weights is None:
        weights = _node_weights({t for _, t, _, _ in evs})
    times, busy = [], []
    cur = 0.0
    for t_us, tid, frm, to in evs:
        w = weights.get(tid, 1.0)
        if to == running and frm != running:
            cur += w
        elif frm == running and to != running:
            cur -= w
        else:
            continue
        times.append(t_us / 1e6)
        busy.append(cur)
    return _out(times, busy, as_numpy)


def available_nodes(total_nodes, events=None, workflow=None, weights=None,
                    as_numpy=False):
    """Nodes not running a task over time, out of ``total_nodes`` (the
    allocation's size): ``total_nodes - busy`` of :func:`utilization_report`.
    Returns (times, idle_nodes)."""
    if total_nodes <= 0:
        raise ValueError("total_nodes must be positive")
    times, busy = utilization_report(events, workflow, weights)
    return _out(times, [total_nodes - b for b in busy], as_numpy)
