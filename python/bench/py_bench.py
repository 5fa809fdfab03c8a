"""Benchmark of the Python package against its C references, same run.

    PYTHONPATH=BUILD/python /usr/bin/python3 python/bench/py_bench.py \
        BUILD [-n 1000000]

BUILD is a build tree (its copal, copal-broker). Three private databases:
  1. `copal make_dummies N`: the C bulk loader's rate (the reference);
  2. Job.objects.bulk_create of N Jobs made in Python (a generator: the
     time includes making the Job objects), the same specs as
     make_dummies (name dummyI, workflow dummy, app dummy);
  3. on that database (N READY tasks): the first page of
     Job.objects.filter(workflow="dummy", state="READY") (1,000 tasks,
     and .first()), median of 20; then the event log (N events) read by
     EventLog.objects.all() touching every event's task_id and to_state,
     against `copal export --format jsonl` of the same log to /dev/null.
Exits 1 if a result is wrong (a count, an event missing).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import copal

ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("-n", type=int, default=1000000)
a = ap.parse_args()
BIN = os.path.abspath(a.build)
N = a.n

env = {k: v for k, v in os.environ.items() if not k.startswith("COPAL_")}
env["PATH"] = "%s/cli:%s/broker:%s" % (BIN, BIN, env["PATH"])
env["COPAL_BROKER_BIN"] = BIN + "/broker/copal-broker"
env["COPAL_NO_AUTOSTART"] = "1"
tmp = tempfile.mkdtemp(prefix="copal-pybench-")


def sh(*argv, db):
    e = dict(env, COPAL_DB=db)
    p = subprocess.run(argv, env=e, capture_output=True, text=True)
    if p.returncode:
        sys.exit("%s: %s%s" % (" ".join(argv), p.stdout, p.stderr))
    return p.stdout


def newdb(name):
    db = os.path.join(tmp, name)
    sh("copal", "init", db, db=db)
    sh("copal", "server", "start", db=db)
    return db


def row(what, value, unit, ref=None, target=None):
    print("%-52s %14s %-9s %s %s" % (
        what, "{:,.1f}".format(value) if value < 100 else
        "{:,.0f}".format(value), unit,
        "" if ref is None else "ratio %.2f" % (value / ref),
        "" if target is None else "target %s" % target))


try:
    print("N = %d; python %s; protobuf %s (%s)" % (
        N, sys.version.split()[0], __import__("google.protobuf", fromlist=["x"]).__version__,
        __import__("google.protobuf.internal.api_implementation",
                   fromlist=["x"]).Type()))
    # 1. the C reference
    dbc = newdb("c")
    t0 = time.perf_counter()
    sh("copal", "make_dummies", str(N), db=dbc)
    c_rate = N / (time.perf_counter() - t0)
    sh("copal", "server", "stop", db=dbc)
    shutil.rmtree(dbc)
    row("copal make_dummies N (C bulk loader)", c_rate, "tasks/s")

    # 2. Python
    dbp = newdb("py")
    copal.connect(db=dbp)
    copal.App(name="dummy", executable="true").save()
    t0 = time.perf_counter()
    n = copal.Job.objects.bulk_create(
        copal.Job(name="dummy%d" % (i + 1), workflow="dummy",
                  application="dummy") for i in range(N))
    py_rate = N / (time.perf_counter() - t0)
    if n != N or copal.Job.objects.by_state() != {"READY": N}:
        sys.exit("bulk_create: %d, %r" % (n, copal.Job.objects.by_state()))
    row("Job.objects.bulk_create(N), Jobs made in Python", py_rate,
        "tasks/s", c_rate, ">= 100,000")

    # 3a. first page of a filter
    qs = copal.Job.objects.filter(workflow="dummy", state="READY")
    times, ftimes = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        page = next(qs._pages())
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        j = qs.first()
        ftimes.append(time.perf_counter() - t0)
    if len(page) != 1000 or j.name != "dummy1":
        sys.exit("first page: %d tasks, first %r" % (len(page), j))
    row("first page (1,000 Jobs) of filter(wf, state)", statistics.median(
        times) * 1e3, "ms", None, "< 20 ms")
    row("filter(wf, state).first()", statistics.median(ftimes) * 1e3, "ms")

    # 3b. the event log
    t0 = time.perf_counter()
    sh("copal", "export", "--format", "jsonl", "-o", "/dev/null", db=dbp)
    exp_rate = N / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    k = 0
    ready = 0
    for e in copal.EventLog.objects.all():
        k += 1
        if e.to_state == "READY" and e.task_id:
            ready += 1
    ev_rate = k / (time.perf_counter() - t0)
    if k != N or ready != N:
        sys.exit("event log: %d events, %d to READY" % (k, ready))
    row("copal export --format jsonl (C, reference)", exp_rate, "events/s")
    row("EventLog.objects.all(), task_id + to_state read", ev_rate,
        "events/s", exp_rate, ">= 300,000")
    t0 = time.perf_counter()
    k = sum(len(p) for p in copal.EventLog.objects.all().pages())
    row("EventQuery.pages() (raw copal_pb2.Event)", k / (
        time.perf_counter() - t0), "events/s", exp_rate)
    copal.disconnect()
    sh("copal", "server", "stop", db=dbp)
finally:
    for d in ("c", "py"):
        if os.path.exists(os.path.join(tmp, d)):
            subprocess.run(["copal", "server", "stop"], env=dict(
                env, COPAL_DB=os.path.join(tmp, d)), capture_output=True)
    shutil.rmtree(tmp, ignore_errors=True)
