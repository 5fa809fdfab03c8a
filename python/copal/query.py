"""Lazy, paged queries: Job.objects.filter(...) and EventLog.objects.filter(...).

A QuerySet holds its criteria only; the broker is asked when it is
iterated (one page at a time, ``after_id`` paging: never all tasks at
once), counted, updated or deleted. Criteria the protocol's Filter carries
are sent to the broker; the others (``parents``, ``name__contains``)
are applied here to the pages as they come, so a query
with one of them reads every task the broker-side part selects.
"""

import datetime
import itertools

from . import copal_pb2 as pb
from . import _state

STATES = _state.STATES


def _state_num(s):
    if isinstance(s, int):
        if 0 < s < len(STATES):
            return s
    elif isinstance(s, str):
        n = _state.BY_NAME.get(s.upper())
        if n:
            return n
    raise ValueError("unknown task state %r (one of %s)" % (
        s, ", ".join(STATES[1:])))


def _ids_of(refs, what):
    out = []
    if isinstance(refs, (int, str)) or hasattr(refs, "id"):
        refs = [refs]
    for r in refs:
        if isinstance(r, bool):
            raise TypeError("%s: %r is not a task" % (what, r))
        if isinstance(r, int):
            if r <= 0:
                raise ValueError("%s: task ids are positive, not %d" % (
                    what, r))
            out.append(r)
        elif hasattr(r, "id"):
            if r.id is None:
                raise ValueError("%s: task %r is not saved yet" % (what, r))
            out.append(r.id)
        else:
            raise TypeError("%s: %r is neither a Job nor a task id" % (
                what, r))
    return out


def _tag_list(v):
    """Tags as a list of "key=value": one, a list, or a dict."""
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return ["%s=%s" % (_str("tags", a), _str("tags", b))
                for a, b in v.items()]
    return list(v)


# keyword -> how it goes into the query: ("broker", setter) or ("local", fn)
_SERVER_KEYS = {"state", "state__in", "workflow", "application", "app",
                "name", "uuid", "uuid__startswith", "id", "pk", "id__in",
                "num_nodes__gte", "num_nodes__lte", "num_nodes", "tags",
                "batch_job"}
_LOCAL_KEYS = {"parents", "name__contains"}


class QuerySet:
    """Tasks selected by criteria, fetched lazily in pages.

    Iterating yields :class:`copal.Job` objects in id order, asking the
    broker for ``page_size`` tasks at a time. ``filter()`` returns a new
    QuerySet with more criteria (all must hold).

    Criteria: ``state`` (a name like "JOB_FINISHED" or a list of them),
    ``state__in``, ``workflow``, ``application`` (or ``app``), ``name``,
    ``uuid`` / ``uuid__startswith`` (a hex prefix), ``id`` / ``pk`` /
    ``id__in``, ``num_nodes`` / ``num_nodes__gte`` / ``num_nodes__lte``,
    ``tags`` (a "key=value" tag, a list of them or a dict {key: value}:
    tasks having all of them), ``batch_job`` (a batch job's id: the tasks
    that ran in it, as ``copal ls --batch-job``), and,
    checked here rather than by the broker, ``parents`` (Jobs or ids: tasks waiting for
    all of them) and ``name__contains``.
    """

    page_size = 1000

    def __init__(self, conn_fn, criteria=None):
        self._conn_fn = conn_fn
        self._crit = dict(criteria or {})
        self._filter, self._local = self._compile(self._crit)

    # -------------------------------------------------------- criteria
    @staticmethod
    def _compile(crit):
        f = pb.Filter()
        local = []
        any_server = False
        for k, v in crit.items():
            if k in ("state", "state__in"):
                vals = [v] if isinstance(v, (str, int)) else list(v)
                if not vals:
                    raise ValueError("%s: give at least one state" % k)
                f.states.extend(_state_num(s) for s in vals)
            elif k == "workflow":
                f.workflow = _str(k, v)
            elif k in ("application", "app"):
                f.application = _str(k, v)
            elif k == "name":
                f.name = _str(k, v)
            elif k in ("uuid", "uuid__startswith"):
                s = _str(k, v).replace("-", "")
                if not s or any(c not in "0123456789abcdefABCDEF" for c in s):
                    raise ValueError("%s: %r is not a uuid prefix (hex "
                                     "digits)" % (k, v))
                f.uuid_prefix = s
            elif k in ("id", "pk", "id__in"):
                ids = _ids_of(v, k)
                if not ids:
                    raise ValueError("%s: give at least one id" % k)
                f.ids.extend(ids)
            elif k in ("num_nodes", "num_nodes__gte", "num_nodes__lte"):
                if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                    raise ValueError("%s: %r is not a positive node count"
                                     % (k, v))
                if k != "num_nodes__lte":
                    f.min_nodes = v
                if k != "num_nodes__gte":
                    f.max_nodes = v
            elif k == "tags":
                # "key=value" tags, all of which a task must carry: the
                # broker walks the first one's index (Filter.tags)
                tags = _tag_list(v)
                if not tags:
                    raise ValueError("tags: give at least one key=value")
                for t in tags:
                    if "=" not in _str(k, t) or t.startswith("="):
                        raise ValueError("tags: %r is not key=value" % t)
                f.tags.extend(tags)
            elif k == "batch_job":
                if isinstance(v, bool) or not isinstance(v, int) or \
                        not 0 < v < 1 << 64:
                    raise ValueError("batch_job: %r is not a batch job id "
                                     "(an int from 1)" % (v,))
                f.batch_job_id = v
            elif k == "parents":
                want = frozenset(_ids_of(v, k))
                local.append(lambda j, w=want: w.issubset(j.parent_ids))
                continue
            elif k == "name__contains":
                s = _str(k, v)
                local.append(lambda j, s=s: s in j.name)
                continue
            else:
                raise TypeError(
                    "unknown filter %r (known: %s)" % (
                        k, ", ".join(sorted(_SERVER_KEYS | _LOCAL_KEYS))))
            any_server = True
        if not any_server:
            f.all = True
        return f, local

    def filter(self, **criteria):
        """A QuerySet of the tasks that also meet these criteria."""
        crit = dict(self._crit)
        for k, v in criteria.items():
            if k == "tags" and k in crit:
                # tags add up: a task must carry all of them
                v = _tag_list(crit[k]) + _tag_list(v)
            elif k in crit:
                raise ValueError("filter: %s given twice" % k)
            crit[k] = v
        return QuerySet(self._conn_fn, crit)

    def all(self):
        """This QuerySet (Django's spelling)."""
        return self

    # -------------------------------------------------------- reading
    def _pages(self, limit=None, with_spec=True):
        conn = self._conn_fn()
        from .models import Job
        after = 0
        page = self.page_size if limit is None else min(limit, self.page_size)
        while True:
            q = pb.QueryRequest(filter=self._filter, after_id=after,
                                limit=page, with_spec=with_spec)
            rep = conn.call("query", q)
            jobs = [Job._from_pb(t) for t in rep.tasks]
            if self._local:
                jobs = [j for j in jobs
                        if all(ok(j) for ok in self._local)]
            if jobs:
                yield jobs
            if not rep.more or not rep.tasks:
                return
            after = rep.tasks[-1].id

    def __iter__(self):
        for page in self._pages():
            yield from page

    def iterator(self, page_size=None):
        """Iterates with another page size (at most 10,000)."""
        qs = QuerySet(self._conn_fn, self._crit)
        if page_size is not None:
            qs.page_size = int(page_size)
        return iter(qs)

    def __getitem__(self, k):
        if isinstance(k, slice):
            if (k.start or 0) < 0 or (k.stop or 0) < 0 or k.step not in (None, 1):
                raise ValueError("slices of a QuerySet are forward, step 1")
            return list(itertools.islice(iter(self), k.start, k.stop))
        if not isinstance(k, int) or k < 0:
            raise IndexError("QuerySet index must be a non-negative int")
        for j in itertools.islice(iter(self), k, k + 1):
            return j
        raise IndexError("QuerySet index out of range")

    def first(self):
        """The task of the lowest id selected, or None."""
        for page in self._pages(limit=1 if not self._local else None):
            return page[0]
        return None

    def get(self):
        """The one task selected; LookupError if none or several."""
        got = list(itertools.islice(iter(self), 2))
        if len(got) != 1:
            raise LookupError("%s tasks match %r" % (
                "no" if not got else "several", self._crit))
        return got[0]

    def exists(self):
        """Whether any task is selected."""
        return self.first() is not None

    def count(self):
        """The number of tasks selected."""
        if self._local:
            return sum(len(p) for p in self._pages())
        return self._conn_fn().call(
            "count", pb.CountRequest(filter=self._filter)).total

    # no __len__: list(qs) would ask the broker for a count first

    def by_state(self):
        """``{state name: count}`` of the selected tasks (nonzero only)."""
        if self._local:
            out = {}
            for p in self._pages():
                for j in p:
                    out[j.state] = out.get(j.state, 0) + 1
            return out
        rep = self._conn_fn().call("count",
                                   pb.CountRequest(filter=self._filter))
        return {STATES[i]: n for i, n in enumerate(rep.by_state)
                if n and 0 < i < len(STATES)}

    def ids(self):
        """The ids of the selected tasks (a list; fetched without specs
        when every criterion is the broker's)."""
        out = []
        for p in self._pages(with_spec=bool(self._local)):
            out.extend(j.id for j in p)
        return out

    # -------------------------------------------------------- changes
    def _filters(self):
        """Filters naming what to change: the broker's own, or the ids
        of the matches (in chunks) when a criterion is checked here."""
        if not self._local:
            return [self._filter]
        ids = self.ids()
        return [pb.Filter(ids=ids[i:i + 10000])
                for i in range(0, len(ids), 10000)]

    def update(self, message="", **fields):
        """Sets fields (``state``, ``args``, ``priority``, ... any field the
        broker lets modify) in every selected task; one request per field.
        Returns the number of tasks matched. Raises CopalError when the
        broker refuses (a held task, a bad value; the broker's message)."""
        from .models import Job
        if not fields:
            raise ValueError("update: give at least one field=value")
        matched = 0
        for flt in self._filters():
            for i, (k, v) in enumerate(fields.items()):
                wire_field, value = Job._modify_value(k, v)
                rep = self._conn_fn().call("modify", pb.ModifyRequest(
                    filter=flt, field=wire_field, value=value,
                    message=message))
                if i == 0:
                    matched += rep.matched
        return matched

    def delete(self):
        """Deletes the selected tasks (per request all or none); returns
        how many. A task held by a launcher, or with children outside the
        selection, makes the broker refuse (CopalError)."""
        n = 0
        for flt in self._filters():
            n += self._conn_fn().call(
                "delete", pb.DeleteRequest(filter=flt)).deleted
        return n

    def kill(self, recursive=True):
        """Kills the selected tasks (and their descendants when
        ``recursive``); returns how many were killed."""
        n = 0
        for flt in self._filters():
            n += self._conn_fn().call("kill", pb.KillRequest(
                filter=flt, recursive=recursive)).killed
        return n

    def __repr__(self):
        return "<QuerySet %r>" % (self._crit,)


def _str(k, v):
    if not isinstance(v, str):
        raise TypeError("%s: %r is not a string" % (k, v))
    return v


# ------------------------------------------------------------ the event log

def _prefetched(gen):
    """The items of gen, produced one ahead by another thread."""
    import queue
    import threading
    q = queue.Queue(1)
    stop = threading.Event()
    END = object()

    def run():
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        pass
                if stop.is_set():
                    return
            q.put((END, None))
        except BaseException as e:  # handed to the reader
            q.put((END, e))

    th = threading.Thread(target=run, daemon=True)
    th.start()
    try:
        while True:
            item, err = q.get()
            if item is END:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        th.join()


def _time_us(k, t):
    if t is None:
        return 0
    if isinstance(t, datetime.datetime):
        if t.tzinfo is None:
            t = t.astimezone()
        return int(t.timestamp() * 1e6)
    if isinstance(t, str):
        try:
            d = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("%s: %r is not an ISO 8601 time" % (k, t)) from None
        return _time_us(k, d)
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        if t < 0:
            raise ValueError("%s: %r is before 1970" % (k, t))
        return int(t * 1e6)
    raise TypeError("%s: %r is not a time (datetime, epoch seconds or ISO "
                    "8601 string)" % (k, t))


class EventQuery:
    """State changes of the event log in order, streamed a page at a time.

    ``since`` / ``until``: a datetime, epoch seconds or an ISO 8601 string
    (events at or after since, before until); ``workflow``: only the
    tasks of that workflow. Iterating yields :class:`copal.Event`.
    """

    page_size = 10000

    def __init__(self, conn_fn, since=None, until=None, workflow=None):
        self._conn_fn = conn_fn
        self.since_us = _time_us("since", since)
        self.until_us = _time_us("until", until)
        if self.until_us and self.since_us and self.until_us <= self.since_us:
            raise ValueError("until must be after since")
        if workflow is not None:
            _str("workflow", workflow)
        self.workflow = workflow or ""

    def _fetch(self):
        conn = self._conn_fn()
        after = 0
        while True:
            rep = conn.call("export", pb.ExportRequest(
                after_seq=after, since_us=self.since_us,
                until_us=self.until_us, workflow=self.workflow,
                limit=self.page_size))
            if len(rep.events):
                yield rep.events
            if not rep.more or rep.last_seq <= after:
                return
            after = rep.last_seq

    def pages(self):
        """The raw pages: sequences of ``copal_pb2.Event`` (fastest).

        A thread fetches the next page while this one is read (the
        client library releases the GIL while it waits for the broker):
        one page waits at most."""
        return _prefetched(self._fetch())

    def __iter__(self):
        from .models import Event
        for page in self.pages():
            for e in page:
                yield Event(e)

    def __repr__(self):
        return "<EventQuery since=%d until=%d workflow=%r>" % (
            self.since_us, self.until_us, self.workflow)
