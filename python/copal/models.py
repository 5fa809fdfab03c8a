"""Balsam-shaped objects: App, Job, Event and their managers (BatchJob:
batchjob.py)."""

import json
import typing

from . import copal_pb2 as pb
from . import _state
from . import _encode as enc
from .errors import CopalError
from .query import QuerySet, EventQuery, _ids_of, _state_num

STATES = _state.STATES


def _conn():
    from . import connection
    return connection()


# ------------------------------------------------------------ apps

class App:
    """A registered application: what a task's ``application`` names.

    ``executable`` is any command line (the task's ``args`` are appended);
    ``preprocess`` / ``postprocess`` run before / after it; ``envscript``
    is sourced first. ``params`` declares the parameters of a templated
    ``executable`` (``{{ name }}`` placeholders): a dict {name: default},
    where a default of None means every task must give a value (as
    ``copal app --param name`` / ``--param name=default``).
    """

    name: str
    executable: str
    preprocess: str
    postprocess: str
    envscript: str
    description: str
    params: typing.Dict[str, typing.Optional[str]]

    _FIELDS = ("name", "executable", "preprocess", "postprocess",
               "envscript", "description")

    def __init__(self, name="", executable="", preprocess="", postprocess="",
                 envscript="", description="", params=None):
        self.name = name
        self.executable = executable
        self.preprocess = preprocess
        self.postprocess = postprocess
        self.envscript = envscript
        self.description = description
        # anything but a dict is kept as given and refused by save()
        self.params = ({} if params is None else dict(params)
                       if isinstance(params, dict) else params)

    def _message(self):
        for f in self._FIELDS:
            if not isinstance(getattr(self, f), str):
                raise TypeError("App.%s must be a string" % f)
        if not isinstance(self.params, dict):
            raise TypeError("App.params must be a dict {name: default "
                            "or None}")
        m = pb.App(**{f: getattr(self, f) for f in self._FIELDS})
        for k, v in self.params.items():
            if not isinstance(k, str) or not (v is None or
                                              isinstance(v, str)):
                raise TypeError("App.params: names and defaults must be "
                                "strings (None: no default)")
            m.params.add(name=k, default_value=v or "",
                         has_default=v is not None)
        return m

    @classmethod
    def _from_message(cls, a):
        return cls(params={p.name: (p.default_value if p.has_default
                                    else None) for p in a.params},
                   **{f: getattr(a, f) for f in cls._FIELDS})

    def save(self, replace=True):
        """Registers the app (``replace``: an existing one of that name
        too; else CopalError EXISTS)."""
        _conn().call("app_register",
                     pb.AppRegisterRequest(app=self._message(),
                                           replace=replace))
        return self

    def delete(self):
        """Removes the app (CopalError INUSE while tasks use it)."""
        _conn().call("app_delete", pb.AppDeleteRequest(name=self.name))

    def __repr__(self):
        return "App(name=%r, executable=%r)" % (self.name, self.executable)

    def __eq__(self, o):
        return isinstance(o, App) and self.params == o.params and all(
            getattr(self, f) == getattr(o, f) for f in self._FIELDS)


class AppManager:
    """``App.objects``: ``all()``, ``get(name=)``, ``create(**fields)``."""

    def all(self) -> typing.List[App]:
        rep = _conn().call("app_list", pb.AppListRequest())
        return [App._from_message(a) for a in rep.apps]

    def get(self, name) -> App:
        for a in self.all():
            if a.name == name:
                return a
        raise LookupError("no app named %s" % name)

    def create(self, **fields) -> App:
        return App(**fields).save(replace=False)


App.objects = AppManager()


# ------------------------------------------------------------ jobs

# (attribute, place, kind, default, modifiable after creation)
# place: "spec" (TaskSpec) or "res" (Resources)
_JOB_FIELDS = (
    ("name", "spec", str, "", True),
    ("workflow", "spec", str, "", True),
    ("description", "spec", str, "", True),
    ("application", "spec", str, "", True),
    ("args", "spec", str, "", True),
    ("num_nodes", "res", int, 1, True),
    ("ranks_per_node", "res", int, 1, True),
    ("threads_per_rank", "res", int, 1, True),
    ("threads_per_core", "res", int, 1, True),
    ("cpu_affinity", "res", str, "", True),
    ("gpus_per_rank", "res", int, 0, True),
    ("node_packing_count", "res", int, 1, True),
    ("wall_time_minutes", "res", int, 0, True),
    ("stage_in_url", "spec", str, "", True),
    ("stage_out_files", "spec", str, "", True),
    ("stage_out_url", "spec", str, "", True),
    ("workdir", "spec", str, "", True),
    ("auto_timeout_retry", "spec", bool, True, True),
    ("post_error_handler", "spec", bool, False, True),
    ("post_timeout_handler", "spec", bool, False, True),
    ("max_retries", "spec", int, 3, True),
    ("priority", "spec", int, 0, True),
    ("timeout_seconds", "spec", int, 0, True),
    ("command", "spec", str, "", True),
    ("preprocess", "spec", str, "", True),
    ("postprocess", "spec", str, "", True),
)
_FIELD = {f[0]: f for f in _JOB_FIELDS}
_SPEC_F = tuple((f[0], f[3]) for f in _JOB_FIELDS if f[1] == "spec")
_RES_F = tuple((f[0], f[3]) for f in _JOB_FIELDS if f[1] == "res")
_RES_ZERO_IS_ONE = {"num_nodes", "ranks_per_node", "threads_per_rank",
                    "threads_per_core", "node_packing_count"}
_SPEC_PLAN, _RES_PLAN = enc.plan([f[0] for f in _SPEC_F],
                                  [f[0] for f in _RES_F])
_DEFAULTS = dict(_SPEC_F + _RES_F)
_DEFAULTS.update(data=None, id=None, uuid=None, state="", attempt=0,
                 lease_id=0, return_code=0, pending_parents=0, created_us=0,
                 changed_us=0, _saved=None)
# the spec's lists and maps: set at creation, fixed after
_FIXED = ("environ", "tags", "input_files", "params", "launch_params")
_OTHER_FIELDS = _FIXED + ("data",)
_STATUS_FIELDS = ("id", "uuid", "state", "attempt", "lease_id",
                  "return_code", "pending_parents", "created_us",
                  "changed_us")


class Job:
    """A task: what to run (its spec) and where it is (its status).

    Make one with keyword arguments (any attribute below), then
    ``save()``; or many with ``Job.objects.bulk_create([...])``. Read them
    back with ``Job.objects.filter(...)``. Attributes of the spec are
    typed (str, int, bool); after creation ``save()`` sends the changed
    ones to the broker (``environ``, ``tags``, ``input_files``,
    ``params``, ``launch_params`` and ``parents`` are fixed at creation).
    ``state`` may be set too (e.g. "RESTART_READY"), as with ``copal
    modify``.

    Spec: name (required), workflow, description, application (an App's
    name; required unless ``command`` is given), args, environ (dict),
    data (JSON-able object), tags (list of "key=value" str, or a dict
    {key: value} made into that list), num_nodes, ranks_per_node,
    threads_per_rank, threads_per_core, cpu_affinity, gpus_per_rank,
    node_packing_count, wall_time_minutes, input_files (list of patterns),
    stage_in_url, stage_out_files, stage_out_url, workdir,
    auto_timeout_retry, post_error_handler, post_timeout_handler,
    max_retries, priority, timeout_seconds; command (a command line run
    instead of an app's, args appended), preprocess and postprocess (the
    task's own, instead of its app's), params (dict: values of the app's
    declared parameters), launch_params (list: extra words for the MPI
    starter); parents (Jobs or ids to wait for).

    Status (read only, set by the broker): id, uuid, state (a name:
    "JOB_FINISHED"), attempt, lease_id, return_code, pending_parents,
    created_us, changed_us.
    """

    id: typing.Optional[int]
    uuid: typing.Optional[str]
    state: str
    name: str
    workflow: str
    description: str
    application: str
    args: str
    environ: typing.Dict[str, str]
    data: typing.Any
    tags: typing.List[str]
    parent_ids: typing.List[int]
    input_files: typing.List[str]
    num_nodes: int
    ranks_per_node: int
    threads_per_rank: int
    threads_per_core: int
    cpu_affinity: str
    gpus_per_rank: int
    node_packing_count: int
    wall_time_minutes: int
    stage_in_url: str
    stage_out_files: str
    stage_out_url: str
    workdir: str
    auto_timeout_retry: bool
    post_error_handler: bool
    post_timeout_handler: bool
    max_retries: int
    priority: int
    timeout_seconds: int
    command: str
    preprocess: str
    postprocess: str
    params: typing.Dict[str, str]
    launch_params: typing.List[str]
    attempt: int
    lease_id: int
    return_code: int
    pending_parents: int
    created_us: int
    changed_us: int

    def __init__(self, **fields):
        # the defaults are the class's (see _DEFAULTS below); the list and
        # dict ones are made on first use (__getattr__): a job costs what
        # it sets, a million of them go through bulk_create
        d = self.__dict__
        for k, v in fields.items():
            f = _FIELD.get(k)
            if f is not None and type(v) is f[2]:
                d[k] = v  # the common case of __setattr__, inline
            elif k == "parents":
                self.parents = v
            elif k in _FIELD or k in _OTHER_FIELDS:
                setattr(self, k, v)
            else:
                raise TypeError("Job has no field %r" % k)

    def __getattr__(self, k):
        if k in _MUTABLE:
            v = self.__dict__[k] = _MUTABLE[k]()
            return v
        raise AttributeError("Job has no attribute %r" % k)

    def _all(self):
        """Every attribute, defaults included, as a dict."""
        d = dict(_DEFAULTS)
        for k, mk in _MUTABLE.items():
            d[k] = mk()
        d.update(self.__dict__)
        return d

    def __setattr__(self, k, v):
        if k == "parents":
            return object.__setattr__(self, k, v)  # the property's setter
        f = _FIELD.get(k)
        if f is not None:
            kind = f[2]
            if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
                raise TypeError("Job.%s must be an int, not %r" % (k, v))
            if kind is not int and not isinstance(v, kind):
                raise TypeError("Job.%s must be a %s, not %r" % (
                    k, kind.__name__, v))
        elif k in ("tags", "input_files", "launch_params"):
            if k == "tags" and isinstance(v, dict):
                # Balsam's form: {key: value}
                if not all(isinstance(a, str) and isinstance(b, str)
                           for a, b in v.items()):
                    raise TypeError("Job.tags must be a list of key=value "
                                    "strings or a dict of strings")
                v = ["%s=%s" % kv for kv in v.items()]
            if isinstance(v, (str, bytes, dict)) or not all(
                    isinstance(x, str) for x in v):
                raise TypeError("Job.%s must be a list of strings" % k)
            v = list(v)
        elif k in ("environ", "params"):
            if not isinstance(v, dict) or not all(
                    isinstance(a, str) and isinstance(b, str)
                    for a, b in v.items()):
                raise TypeError("Job.%s must be a dict of strings" % k)
            v = dict(v)
        elif k == "state":
            v = STATES[_state_num(v)] if v else ""
        elif k not in ("data",) and not k.startswith("_") and k not in \
                _STATUS_FIELDS:
            raise AttributeError("Job has no field %r" % k)
        self.__dict__[k] = v

    # -------------------------------------------------------- parents
    @property
    def parents(self) -> QuerySet:
        """The tasks this one waits for (a QuerySet; empty if none)."""
        if not self.parent_ids:
            return _Empty()
        return QuerySet(_conn, {"id__in": list(self.parent_ids)})

    @parents.setter
    def parents(self, refs):
        if self.id is not None:
            raise ValueError("the parents of a saved task are fixed "
                             "(copal dep adds one)")
        jobs, ids = [], []
        if isinstance(refs, (int, Job)):
            refs = [refs]
        for r in refs:
            if isinstance(r, Job):
                if r.id is None:
                    jobs.append(r)  # saved before this one (bulk_create)
                else:
                    ids.append(r.id)
            else:
                ids.extend(_ids_of(r, "parents"))
        self.__dict__["parent_ids"] = ids
        self.__dict__["_parent_jobs"] = jobs

    @property
    def children(self) -> QuerySet:
        """The tasks that wait for this one. The broker has no filter by
        parent: this reads every task's spec (a page at a time)."""
        return QuerySet(_conn, {"parents": [self._need_id()]})

    # -------------------------------------------------------- wire
    def _need_id(self):
        if self.id is None:
            raise ValueError("the task %r is not saved" % (self.name,))
        return self.id

    @classmethod
    def _from_pb(cls, t):
        j = cls.__new__(cls)
        d = j.__dict__
        # only the fields the message has (ListFields, one call): the
        # others are the class's defaults, but for those whose default
        # is not the schema's zero
        d.update(_ZERO_OVERRIDES)
        for fd, v in t.spec.ListFields():
            n = fd.name
            if n == "resources":
                for rfd, rv in v.ListFields():
                    d[rfd.name] = rv
            elif n in ("environ", "params"):
                d[n] = {e.name: e.value for e in v}
            elif n == "data_json":
                d["data"] = json.loads(v)
            elif n in ("tags", "input_files", "parent_ids", "launch_params"):
                d[n] = list(v)
            else:
                d[n] = v
        st = t.status
        d["id"] = t.id
        d["uuid"] = t.uuid
        s = st.state
        d["state"] = STATES[s] if s < len(STATES) else str(s)
        for fd, v in st.ListFields():
            if fd.name != "state":
                d[fd.name] = v
        d["_saved"] = t  # save() compares with it
        return j

    def _snapshot(self):
        d = self._all()
        snap = {f[0]: d[f[0]] for f in _JOB_FIELDS}
        snap["data"] = json.dumps(d["data"], sort_keys=True)
        snap["state"] = d["state"]
        snap["environ"] = dict(d["environ"])
        for k in _FIXED:
            snap[k] = type(d[k])(d[k])
        return snap

    def _fill_spec(self, sp):
        """Writes this job's spec into the TaskSpec sp through the protobuf
        module: the reference _encode_spec is tested against (only what is
        not the schema's default)."""
        d = self._all()
        if not d["name"]:
            raise ValueError("a task needs a name")
        if not d["application"] and not d["command"]:
            raise ValueError("task %r: a task needs an application or a "
                             "command" % d["name"])
        for name, _ in _SPEC_F:
            v = d[name]
            if v:
                setattr(sp, name, v)
        res = sp.resources
        res.SetInParent()
        for name, _ in _RES_F:
            v = d[name]
            if v:
                setattr(res, name, v)
        if d["environ"]:
            for k, v in d["environ"].items():
                sp.environ.add(name=k, value=v)
        for k, v in d["params"].items():
            sp.params.add(name=k, value=v)
        sp.launch_params.extend(d["launch_params"])
        if d["data"] is not None:
            sp.data_json = json.dumps(d["data"])
        if d["tags"]:
            sp.tags.extend(d["tags"])
        if d["input_files"]:
            sp.input_files.extend(d["input_files"])
        if d["parent_ids"]:
            sp.parent_ids.extend(d["parent_ids"])

    def _encode_spec(self, more_parents=()):
        """This job's TaskSpec, packed: the bytes _fill_spec's message
        packs to (see _encode.py), made ~5 times faster."""
        d = self.__dict__
        if not d.get("name"):
            raise ValueError("a task needs a name")
        if not d.get("application") and not d.get("command"):
            raise ValueError("task %r: a task needs an application or a "
                             "command" % d["name"])
        parts = []
        add = parts.append
        res = None
        varint = enc.varint
        for k, v in d.items():
            p = _PLAN.get(k)
            if p is None or (not v and (k != "data" or v is None)):
                continue
            where, kind, tag = p
            if where == 1:  # Resources
                if res is None:
                    res = dict(_RES_DEFAULT)
                res[k] = (tag + varint(v) if kind != "s" else
                          enc.strfield(tag, v))
            elif kind == "s":
                b = v.encode()
                add(tag + varint(len(b)) + b)
            elif kind == "i":
                add(tag + varint(v))
            elif kind == "b":
                add(tag + b"\x01")
            elif kind == "e":  # environ, params: EnvVar
                for ek, ev in v.items():
                    add(enc.lenfield(tag, enc.strfield(
                        enc.TAG_ENV_NAME, ek) + enc.strfield(
                            enc.TAG_ENV_VALUE, ev)))
            elif k == "data":
                add(enc.strfield(enc.TAG_DATA, json.dumps(v)))
            elif kind == "l":
                for t in v:
                    add(enc.strfield(tag, t))
        for k, b in _SPEC_DEFAULT_BYTES:
            if k not in d:
                add(b)
        add(_RES_DEFAULT_BYTES if res is None else enc.lenfield(
            enc.TAG_RES, b"".join(res.values())))
        pids = d.get("parent_ids")
        if pids or more_parents:
            add(enc.packed(enc.TAG_PARENTS,
                           list(pids or ()) + list(more_parents)))
        return b"".join(parts)

    @staticmethod
    def _modify_value(k, v):
        """The wire form of ``update(k=v)``: (field, value string)."""
        if k == "state":
            return "state", STATES[_state_num(v)]
        if k == "data":
            return "data", json.dumps(v)
        f = _FIELD.get(k)
        if f is None or not f[4]:
            raise ValueError("%r cannot be changed (modifiable: state, "
                             "data, %s)" % (k, ", ".join(
                                 x[0] for x in _JOB_FIELDS if x[4])))
        if f[2] is bool:
            if not isinstance(v, bool):
                raise TypeError("%s must be a bool, not %r" % (k, v))
            return k, "yes" if v else "no"
        if f[2] is int and (isinstance(v, bool) or not isinstance(v, int)):
            raise TypeError("%s must be an int, not %r" % (k, v))
        if f[2] is str and not isinstance(v, str):
            raise TypeError("%s must be a string, not %r" % (k, v))
        return k, str(v)

    # -------------------------------------------------------- actions
    def save(self):
        """Creates the task (sets id, uuid, state) or, when it exists,
        sends the attributes changed since it was read. Raises CopalError
        with the broker's message when it refuses (no such app, a bad
        value, a task held by a launcher)."""
        if self.id is None:
            Job.objects.bulk_create([self], want_uuids=True)
            self.refresh_from_db()
            return self
        old = Job._from_pb(self._saved)._snapshot() if self._saved else {}
        now = self._snapshot()
        for k in _FIXED:
            if now[k] != old.get(k):
                raise ValueError("%s of a saved task cannot change" % k)
        changes = {k: getattr(self, k) for k in now
                   if k not in _FIXED and k not in ("data", "state") and
                   now[k] != old.get(k)}
        if now["data"] != old.get("data"):
            changes["data"] = self.data
        if now["state"] != old.get("state"):
            changes["state"] = self.state
        if changes:
            QuerySet(_conn, {"id": self.id}).update(**changes)
        self.refresh_from_db()
        return self

    def refresh_from_db(self):
        """Reads the task again from the broker."""
        t = QuerySet(_conn, {"id": self._need_id()}).first()
        if t is None:
            raise CopalError(pb.STATUS_NOTFOUND, "task %d is gone" % self.id,
                             remote=False)
        self.__dict__.update(t.__dict__)
        return self

    def delete(self):
        """Deletes the task (CopalError INUSE if it has children, BUSY
        while a launcher holds it)."""
        n = QuerySet(_conn, {"id": self._need_id()}).delete()
        self.__dict__["id"] = None
        return n

    def kill(self, recursive=True):
        """Kills the task (a running one is stopped by its launcher) and,
        when ``recursive``, its descendants."""
        return QuerySet(_conn, {"id": self._need_id()}).kill(recursive)

    def history(self) -> typing.List["Event"]:
        """The task's state changes, oldest first."""
        rep = _conn().call("history",
                           pb.HistoryRequest(task_id=self._need_id()))
        return [Event(e) for e in rep.events]

    def spawn_child(self, **fields) -> "Job":
        """Creates a task that waits for this one (in its workflow unless
        ``workflow`` is given): a dynamic DAG from inside a running task."""
        fields.setdefault("workflow", self.workflow)
        fields["parents"] = [self._need_id()]
        return Job(**fields).save()

    def add_parent(self, parent):
        """Makes this saved task wait for ``parent`` too."""
        pid = _ids_of(parent, "add_parent")[0]
        _conn().call("add_dependency", pb.AddDependencyRequest(
            parent_id=pid, child_id=self._need_id()))
        self.refresh_from_db()

    @property
    def runnable(self) -> bool:
        return self.state in ("READY", "RESTART_READY")

    def __repr__(self):
        return "Job(id=%r, name=%r, state=%r)" % (self.id, self.name,
                                                  self.state)

    def __eq__(self, o):
        return isinstance(o, Job) and self.id is not None and o.id == self.id

    def __hash__(self):
        return hash(self.id) if self.id is not None else id(self)


class _Empty(list):
    """No parents: behaves like an empty QuerySet."""

    def count(self):
        return 0

    def first(self):
        return None


class JobManager:
    """``Job.objects``: the task table.

    ``filter(**criteria)`` / ``all()`` give a lazy, paged
    :class:`QuerySet`; ``count()``, ``by_state()``, ``first()`` and
    ``get(...)`` are shortcuts; ``bulk_create(jobs)`` creates many.
    """

    batch_size = 10000

    def all(self) -> QuerySet:
        return QuerySet(_conn)

    def filter(self, **criteria) -> QuerySet:
        return QuerySet(_conn, criteria)

    def get(self, **criteria) -> Job:
        return QuerySet(_conn, criteria).get()

    def count(self) -> int:
        return self.all().count()

    def by_state(self) -> typing.Dict[str, int]:
        return self.all().by_state()

    def first(self) -> typing.Optional[Job]:
        return self.all().first()

    def create(self, **fields) -> Job:
        return Job(**fields).save()

    def bulk_create(self, jobs, batch_size=None, want_uuids=False):
        """Creates jobs in requests of ``batch_size`` (10,000) tasks, each
        all or none, and sets their ids (consecutive per request). A
        parent may be an unsaved Job earlier in the list. While one batch
        is at the broker the next is encoded (another thread).

        Returns the list given; given another iterable (a generator), the
        jobs are taken a batch at a time and not kept (a million Job
        objects need over a GB), and the number created is returned.
        ``want_uuids``: also set their uuids (a larger reply; else
        ``job.uuid`` is None until ``refresh_from_db()``).

        On a refusal (CopalError naming "task I (NAME)" of its batch) the
        batches before it stay created: their jobs have ids."""
        import concurrent.futures
        import itertools
        bs = int(batch_size or self.batch_size)
        if bs <= 0:
            raise ValueError("batch_size must be positive")
        keep = isinstance(jobs, (list, tuple))
        it = iter(jobs)
        conn = _conn()
        total = 0

        def send(data, batch):
            c = conn.call_packed("create", data)
            if c.count != len(batch):
                raise CopalError(pb.STATUS_PROTO, "asked for %d tasks, the "
                                 "broker made %d" % (len(batch), c.count),
                                 remote=False)
            for i, j in enumerate(batch):
                d = j.__dict__
                d["id"] = c.first_id + i
                if d.get("_parent_jobs"):
                    d["parent_ids"] = d.get("parent_ids", []) + [
                        p.id for p in d["_parent_jobs"]]
                    d["_parent_jobs"] = []
            if want_uuids:
                for j, u in zip(batch, c.uuids):
                    j.__dict__["uuid"] = u

        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            fut = None
            start = 0
            while True:
                batch = list(itertools.islice(it, bs))
                if not batch:
                    break
                for j in batch:
                    if not isinstance(j, Job):
                        raise TypeError("bulk_create: %r is not a Job" % (j,))
                    if j.id is not None:
                        raise ValueError("bulk_create: %r is already saved"
                                         % (j,))
                local = any(j.__dict__.get("_parent_jobs") for j in batch)
                pos = {id(j): i for i, j in enumerate(batch)} if local else {}
                if local and fut is not None and any(
                        id(p) not in pos for j in batch
                        for p in j.__dict__.get("_parent_jobs", ())):
                    fut.result()  # a parent in the batch in flight
                specs, lchild, lparent = [], [], []
                for i, j in enumerate(batch):
                    more = []
                    for p in j.__dict__.get("_parent_jobs", ()):
                        if id(p) in pos:
                            lchild.append(i)
                            lparent.append(pos[id(p)])
                        elif p.id is not None:
                            more.append(p.id)
                        else:
                            raise ValueError(
                                "bulk_create: job %d (%s): parent %r is not "
                                "saved and not earlier in the list" % (
                                    start + i, j.name, p.name))
                    try:
                        specs.append(j._encode_spec(more))
                    except (ValueError, TypeError) as e:
                        raise type(e)("bulk_create: job %d: %s" % (
                            start + i, e)) from None
                data = enc.request(specs, lchild, lparent, want_uuids)
                if fut is not None:
                    fut.result()
                fut = ex.submit(send, data, batch)
                start += len(batch)
                total += len(batch)
            if fut is not None:
                fut.result()
        return jobs if keep else total


Job.objects = JobManager()
for _k, _v in _DEFAULTS.items():
    type.__setattr__(Job, _k, _v)
_MUTABLE = {"environ": dict, "tags": list, "input_files": list,
            "params": dict, "launch_params": list,
            "parent_ids": list, "_parent_jobs": list}
# what _encode_spec writes: (0 TaskSpec | 1 Resources | 2 other, kind, tag)
_PLAN = {n: (0, k, t) for n, k, t in _SPEC_PLAN}
_PLAN.update({n: (1, k, t) for n, k, t in _RES_PLAN})
_PLAN.update(environ=(2, "e", enc.TAG_ENV), data=(2, "d", None),
             tags=(2, "l", enc.TAG_TAGS), input_files=(2, "l", enc.TAG_INPUT),
             params=(2, "e", enc.TAG_PARAMS),
             launch_params=(2, "l", enc.TAG_LPARAMS))
# a default the schema's zero is not, sent unless the job sets the field
_SPEC_DEFAULT_BYTES = tuple(
    (n, t + (b"\x01" if k == "b" else enc.varint(_DEFAULTS[n])))
    for n, k, t in _SPEC_PLAN if _DEFAULTS[n])
_RES_DEFAULT = {n: t + enc.varint(_DEFAULTS[n]) for n, k, t in _RES_PLAN
                if _DEFAULTS[n] and k != "s"}
_ZERO_OVERRIDES = {n: type(v)() for n, v in _SPEC_F if v}
_RES_DEFAULT_BYTES = enc.lenfield(enc.TAG_RES,
                                  b"".join(_RES_DEFAULT.values()))


# ------------------------------------------------------------ events

class Event:
    """One state change of one task (an entry of the event log).

    Attributes: seq, task_id, uuid, name, workflow, from_state, to_state
    (names), time_us (when it happened: the launcher's clock for its
    reports, else the broker's commit time, as `copal export` gives it),
    timestamp (time_us in epoch seconds), commit_us (the broker's commit
    time, the log's order), attempt, lease_id, launcher, node, return_code,
    message, user (who caused it, "" for launchers), batch_job_id and
    scheduler_job_id (the batch job of the event's lease, as `copal
    export`'s batch_job and scheduler_job_id; 0 and "": a launcher started
    by hand).
    """

    __slots__ = ("_m",)

    def __init__(self, m):
        self._m = m

    seq = property(lambda s: s._m.seq)
    task_id = property(lambda s: s._m.task_id)
    uuid = property(lambda s: s._m.uuid)
    name = property(lambda s: s._m.name)
    workflow = property(lambda s: s._m.workflow)
    from_state = property(lambda s: STATES[s._m.from_state])
    to_state = property(lambda s: STATES[s._m.to_state])
    time_us = property(lambda s: s._m.event_us or s._m.time_us)
    timestamp = property(lambda s: (s._m.event_us or s._m.time_us) / 1e6)
    commit_us = property(lambda s: s._m.time_us)
    attempt = property(lambda s: s._m.attempt)
    lease_id = property(lambda s: s._m.lease_id)
    launcher = property(lambda s: s._m.launcher)
    node = property(lambda s: s._m.node)
    return_code = property(lambda s: s._m.return_code)
    message = property(lambda s: s._m.message)
    user = property(lambda s: s._m.user)
    batch_job_id = property(lambda s: s._m.batch_job_id)
    scheduler_job_id = property(lambda s: s._m.scheduler_job_id)

    def __repr__(self):
        return "Event(seq=%d, task=%d, %s->%s)" % (
            self.seq, self.task_id, self.from_state, self.to_state)


class EventLogManager:
    """``EventLog.objects``: ``filter(since=, until=, workflow=)`` and
    ``all()`` stream the log (see :class:`copal.query.EventQuery`)."""

    def all(self) -> EventQuery:
        return EventQuery(_conn)

    def filter(self, since=None, until=None, workflow=None) -> EventQuery:
        return EventQuery(_conn, since=since, until=until, workflow=workflow)


class EventLog:
    """The event log: every state change of every task, in order."""

    objects = EventLogManager()


# ------------------------------------------------------------ batch jobs
# (batchjob.py; here too for `from copal.models import BatchJob`)
from .batchjob import BatchJob, BatchJobManager  # noqa: E402,F401
