"""Tests of the copal Python package against real brokers and launchers.

Run by ctest (python/test/CMakeLists.txt) with Debian's /usr/bin/python3:
COPAL_BIN names the build tree, PYTHONPATH its python/ directory. Each
test class makes a private database in a temp dir, starts its broker with
`copal server start` and stops it at the end.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

try:
    import google.protobuf  # noqa: F401 (Debian's python3-protobuf)
except ImportError:
    print("SKIP: %s has no google.protobuf (python3-protobuf)" %
          sys.executable)
    sys.exit(77)

import copal
from copal import copal_pb2 as pb

BIN = os.path.abspath(os.environ["COPAL_BIN"])
PY = sys.executable


def _env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("COPAL_") and k not in ("COPAL_BIN",
                                                "COPAL_CLIENT_LIBRARY"):
            del env[k]
    env["PATH"] = os.pathsep.join([BIN + "/cli", BIN + "/broker",
                                   BIN + "/launcher", env.get("PATH", "")])
    env["COPAL_BROKER_BIN"] = BIN + "/broker/copal-broker"
    env["COPAL_NO_AUTOSTART"] = "1"
    env["LC_ALL"] = "C"
    return env


class Broker:
    """A private database and its running broker."""

    def __init__(self, conf_extra=None):
        self.tmp = tempfile.mkdtemp(prefix="copal-py-")
        self.db = os.path.join(self.tmp, "db")
        self.env = _env()
        self.env["HOME"] = self.tmp
        self.env["COPAL_DB"] = self.db
        self.run("copal", "init", self.db)
        if conf_extra:
            # KEY = VALUE lines replace the file's own
            path = os.path.join(self.db, "copal.conf")
            conf = _read(path).splitlines()
            for line in conf_extra.splitlines():
                key = line.split("=")[0].strip()
                conf = [c for c in conf if c.split("=")[0].strip() != key]
                conf.append(line)
            with open(path, "w") as f:
                f.write("\n".join(conf) + "\n")
        self.run("copal", "server", "start")
        self.launchers = []

    def run(self, *argv, check=True):
        p = subprocess.run(argv, env=self.env, capture_output=True,
                           text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError("%s: exit %d: %s%s" % (
                " ".join(argv), p.returncode, p.stdout, p.stderr))
        return p

    def launcher(self, *args):
        log = os.path.join(self.tmp, "launcher%d.log" % len(self.launchers))
        with open(log, "w") as f:
            p = subprocess.Popen(["copal-launcher", "--db", self.db] +
                                 list(args), env=self.env, stdout=f,
                                 stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        self.launchers.append((p, log))
        return p

    def wait_launchers(self, timeout=90):
        for p, log in self.launchers:
            try:
                rc = p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError("launcher did not end: %s" %
                                     _read(log))
            if rc != 0:
                raise AssertionError("launcher exit %d: %s" %
                                     (rc, _read(log)))
        self.launchers = []

    def close(self):
        for p, _ in self.launchers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.run("copal", "server", "stop", check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _read(path):
    with open(path) as f:
        return f.read()


def wait_for(pred, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s" % what)


class BrokerCase(unittest.TestCase):
    conf_extra = None

    @classmethod
    def setUpClass(cls):
        cls.b = Broker(cls.conf_extra)
        copal.connect(db=cls.b.db)
        copal.App(name="sim", executable="/bin/true").save()

    @classmethod
    def tearDownClass(cls):
        copal.disconnect()
        cls.b.close()

    def tearDown(self):
        # every test leaves an empty task table
        qs = copal.Job.objects.all()
        if qs.count():
            qs.kill()
            qs.delete()


class TestCrud(BrokerCase):
    def test_create_filter_update_delete(self):
        jobs = [copal.Job(name="t%d" % i, workflow="wa" if i % 2 else "wb",
                          application="sim", num_nodes=1 + i % 3,
                          tags=["parity=even"] if i % 2 == 0 else [],
                          data={"i": i}) for i in range(250)]
        copal.Job.objects.bulk_create(jobs)
        self.assertEqual([j.id for j in jobs],
                         list(range(jobs[0].id, jobs[0].id + 250)))
        self.assertEqual(copal.Job.objects.count(), 250)
        wa = copal.Job.objects.filter(workflow="wa")
        self.assertEqual(wa.count(), 125)
        self.assertEqual(wa.by_state(), {"READY": 125})
        # paged: 3 pages of 100, all of them, in id order, specs decoded
        wa.page_size = 100
        got = list(wa)
        self.assertEqual([j.name for j in got],
                         ["t%d" % i for i in range(1, 250, 2)])
        self.assertEqual(got[3].data, {"i": 7})
        self.assertEqual(got[3].num_nodes, 1 + 7 % 3)
        self.assertEqual(wa.first().name, "t1")
        self.assertEqual(copal.Job.objects.filter(
            num_nodes__gte=3).count(), len([i for i in range(250)
                                            if 1 + i % 3 >= 3]))
        self.assertEqual(copal.Job.objects.filter(tags="parity=even").count(), 125)
        self.assertEqual(copal.Job.objects.filter(
            tags=["parity=even"], workflow="wa").count(), 0)
        self.assertEqual(copal.Job.objects.filter(
            name__contains="t24").count(), 11)
        one = copal.Job.objects.get(name="t42")
        self.assertEqual(one.uuid, copal.Job.objects.get(
            uuid__startswith=one.uuid[:8]).uuid)
        # update: through the broker, seen when read back
        n = wa.update(priority=7, args="--fast")
        self.assertEqual(n, 125)
        self.assertEqual({(j.priority, j.args) for j in wa}, {(7, "--fast")})
        self.assertEqual({j.priority for j in copal.Job.objects.filter(
            workflow="wb")}, {0})
        wa.filter(name="t1").update(state="USER_KILLED")
        self.assertEqual(copal.Job.objects.get(name="t1").state,
                         "USER_KILLED")
        self.assertEqual(wa.by_state(), {"READY": 124, "USER_KILLED": 1})
        # save of a changed job, refresh
        j = copal.Job.objects.get(name="t2")
        j.args = "x y"
        j.max_retries = 1
        j.save()
        again = copal.Job.objects.get(id=j.id)
        self.assertEqual((again.args, again.max_retries), ("x y", 1))
        # a filter by a local criterion deletes exactly its matches
        self.assertEqual(copal.Job.objects.filter(
            tags="parity=even", workflow="wb").delete(), 125)
        self.assertEqual(copal.Job.objects.count(), 125)
        self.assertEqual(wa.delete(), 125)
        self.assertEqual(copal.Job.objects.count(), 0)
        self.assertIsNone(copal.Job.objects.first())

    def test_save_history_parents_children(self):
        a = copal.Job(name="a", workflow="g", application="sim")
        a.save()
        self.assertEqual(a.state, "READY")
        self.assertEqual(len(a.uuid), 36)
        b = copal.Job(name="b", workflow="g", application="sim", parents=[a])
        b.save()
        self.assertEqual(b.state, "AWAITING_PARENTS")
        self.assertEqual([p.id for p in b.parents], [a.id])
        self.assertEqual([c.id for c in a.children], [b.id])
        self.assertEqual([(e.from_state, e.to_state) for e in b.history()],
                         [("CREATED", "AWAITING_PARENTS")])
        # a parent with a child outside the selection: refused, kept
        with self.assertRaises(copal.CopalError) as cm:
            a.delete()
        self.assertEqual(cm.exception.code, pb.STATUS_INUSE)
        self.assertTrue(cm.exception.remote)
        self.assertEqual(copal.Job.objects.count(), 2)
        b.delete()
        a.delete()
        self.assertEqual(copal.Job.objects.count(), 0)

    def test_bulk_create_dag_across_batches(self):
        # a parent in an earlier batch is named by its id, one in the
        # same batch as a local dependency
        jobs = []
        for i in range(30):
            jobs.append(copal.Job(name="n%d" % i, workflow="dag",
                                  application="sim",
                                  parents=[jobs[i - 1]] if i else []))
        copal.Job.objects.bulk_create(jobs, batch_size=7)
        for i in range(1, 30):
            self.assertEqual(jobs[i].parent_ids, [jobs[i - 1].id])
        got = {j.id: j for j in copal.Job.objects.filter(workflow="dag")}
        for i in range(1, 30):
            self.assertEqual(got[jobs[i].id].parent_ids, [jobs[i - 1].id])
            self.assertEqual(got[jobs[i].id].state, "AWAITING_PARENTS")

    def test_bad_input(self):
        J = copal.Job
        with self.assertRaisesRegex(TypeError, "unknown filter 'colour'"):
            J.objects.filter(colour="red")
        with self.assertRaisesRegex(ValueError, "unknown task state 'DONE'"):
            J.objects.filter(state="DONE")
        with self.assertRaisesRegex(ValueError, "not a uuid prefix"):
            J.objects.filter(uuid="xyz")
        with self.assertRaisesRegex(TypeError, "Job.num_nodes must be an int"):
            J(name="x", application="sim", num_nodes="2")
        with self.assertRaisesRegex(TypeError, "Job has no field 'colour'"):
            J(name="x", application="sim", colour=1)
        with self.assertRaisesRegex(ValueError, "a task needs a name"):
            J(application="sim").save()
        with self.assertRaisesRegex(ValueError, "'tags' cannot be changed"):
            J.objects.all().update(tags=["a"])
        with self.assertRaisesRegex(ValueError, "since"):
            copal.EventLog.objects.filter(since="yesterday")
        with self.assertRaisesRegex(RuntimeError, "COPAL_TASK_ID is not set"):
            copal.current_job()
        # the broker's refusals: its message and code; nothing created
        good = [J(name="g%d" % i, application="sim") for i in range(5)]
        bad = J(name="bad", application="nope")
        with self.assertRaises(copal.CopalError) as cm:
            J.objects.bulk_create(good + [bad])
        e = cm.exception
        self.assertEqual((e.code, e.name, e.remote),
                         (pb.STATUS_NOTFOUND, "NOTFOUND", True))
        self.assertIn("task 5 (bad): no app named nope", e.message)
        self.assertEqual(J.objects.count(), 0)
        J(name="k", application="sim").save()
        with self.assertRaises(copal.CopalError) as cm:
            J.objects.all().update(priority=1 << 40)
        self.assertEqual(cm.exception.code, pb.STATUS_INVAL)
        with self.assertRaises(copal.CopalError) as cm:
            J.objects.all().update(state="RUNNING")
        self.assertEqual(J.objects.get(name="k").state, "READY")
        with self.assertRaises(copal.CopalError) as cm:
            copal.App(name="sim", executable="/bin/false").save(replace=False)
        self.assertEqual(cm.exception.code, pb.STATUS_EXISTS)
        self.assertEqual(copal.App.objects.get("sim").executable, "/bin/true")
        with self.assertRaises(copal.CopalError) as cm:
            copal.App(name="sim").delete()
        self.assertEqual(cm.exception.code, pb.STATUS_INUSE)
        # no such database
        with self.assertRaises(copal.CopalError) as cm:
            copal.Connection(db=os.path.join(self.b.tmp, "nodb"))
        self.assertEqual(cm.exception.code, pb.STATUS_NOTFOUND)
        self.assertFalse(cm.exception.remote)

    def test_encoder_matches_protobuf(self):
        # bulk_create's own encoder (_encode.py) against the protobuf
        # module's message built from the same jobs
        J = copal.Job
        jobs = [
            J(name="plain", application="sim"),
            J(name="all", workflow="w\u00e9", description="d", application="sim",
              args="-x 1", environ={"A": "1", "B": "two"}, data={"k": [1]},
              tags=["t1", "t2"], num_nodes=4, ranks_per_node=2,
              threads_per_rank=3, threads_per_core=2, cpu_affinity="depth",
              gpus_per_rank=1, node_packing_count=1, wall_time_minutes=30,
              input_files=["*.dat"], stage_in_url="local:/in",
              stage_out_files="*.out", stage_out_url="local:/out",
              workdir="w/all", auto_timeout_retry=False,
              post_error_handler=True, post_timeout_handler=True,
              max_retries=0, priority=-5, timeout_seconds=600,
              parents=[7, 9]),
            J(name="zero", application="sim", data={}, num_nodes=1,
              priority=2 ** 31 - 1),
        ]
        for j in jobs:
            want = pb.TaskSpec()
            j._fill_spec(want)
            got = pb.TaskSpec()
            got.ParseFromString(j._encode_spec())
            self.assertEqual(got, want, j.name)
        got = pb.TaskSpec()
        got.ParseFromString(jobs[0]._encode_spec((3, 4)))
        self.assertEqual(list(got.parent_ids), [3, 4])
        req = pb.Request()
        req.ParseFromString(copal._encode.request(
            [j._encode_spec() for j in jobs], [2], [0], True))
        self.assertEqual(len(req.create.tasks), 3)
        self.assertEqual(list(req.create.local_parent_child), [2])
        self.assertEqual(list(req.create.local_parent_parent), [0])
        self.assertTrue(req.create.want_uuids)

    def test_strict_decoding(self):
        # every reply goes through _wire.decode, Python's protobuf: a
        # string that is not UTF-8 is refused, not passed on
        r = pb.Reply(status=0, ping=pb.PingReply(version="x"))
        good = r.SerializeToString()
        self.assertEqual(copal._wire.decode(good, "ping").version, "x")
        bad = good.replace(b"\x22\x01x", b"\x22\x01\xff")
        self.assertNotEqual(bad, good)
        with self.assertRaises(copal.CopalError) as cm:
            copal._wire.decode(bad, "ping")
        self.assertEqual(cm.exception.code, pb.STATUS_PROTO)
        with self.assertRaises(copal.CopalError):
            copal._wire.decode(good, "query")  # another body
        # and the live path: a name with every plane of UTF-8 comes back
        name = "t\u00e9\u4e2d\U0001f600"
        copal.Job(name=name, application="sim").save()
        self.assertEqual(copal.Job.objects.get(name=name).name, name)


class TestSpecFields(BrokerCase):
    def test_command_params_launch_params_pre_post(self):
        # TaskSpec's command, preprocess, postprocess, params and
        # launch_params (fields 22-26), and tags given as a dict (Balsam's
        # form): through the broker and back, then run by a launcher
        J = copal.Job
        out = os.path.join(self.b.tmp, "out")
        self.b.run("copal", "app", "--name", "greet", "--command",
                   "echo {{ who }} >>%s" % out, "--param", "who")
        p = J(name="p1", application="greet", params={"who": "it's me"},
              launch_params=["--bind-to", "core"],
              tags={"site": "x", "kind": "a=b"},
              preprocess="echo pre >>%s" % out,
              postprocess="echo post >>%s" % out)
        p.save()
        g = J.objects.get(name="p1")
        self.assertEqual(g.params, {"who": "it's me"})
        self.assertEqual(g.launch_params, ["--bind-to", "core"])
        self.assertEqual(sorted(g.tags), ["kind=a=b", "site=x"])
        self.assertEqual(g.preprocess, "echo pre >>%s" % out)
        self.assertEqual(g.postprocess, "echo post >>%s" % out)
        self.assertEqual(g.command, "")
        self.assertEqual(J.objects.filter(tags={"site": "x"}).count(), 1)
        self.assertEqual(J.objects.filter(tags={"site": "y"}).count(), 0)
        # copal's own view of the same task
        v = json.loads(self.b.run("copal", "ls", "--name", "p1", "--format",
                                  "json", "--verbose").stdout)[0]
        self.assertEqual(v["launch_params"], ["--bind-to", "core"])
        self.assertEqual(v["params"], {"who": "it's me"})
        # a direct command: no application needed; command, preprocess
        # and postprocess can be changed
        d = J(name="d1", command="echo first >>%s" % out, args="d")
        d.save()
        self.assertEqual(J.objects.get(name="d1").application, "")
        d.command = "echo direct >>%s" % out
        d.save()
        self.assertEqual(J.objects.get(name="d1").command,
                         "echo direct >>%s" % out)
        J.objects.filter(name="d1").update(postprocess="echo dpost >>%s"
                                           % out)
        self.assertEqual(d.refresh_from_db().postprocess,
                         "echo dpost >>%s" % out)
        # the encoder writes them as the protobuf module does
        for j in (p, d):
            want = pb.TaskSpec()
            j._fill_spec(want)
            got = pb.TaskSpec()
            got.ParseFromString(j._encode_spec())
            self.assertEqual(got, want, j.name)
        # params and launch_params are fixed at creation; bad values
        with self.assertRaisesRegex(ValueError, "params of a saved task"):
            p.params = {"who": "else"}
            p.save()
        p.refresh_from_db()
        with self.assertRaisesRegex(TypeError, "Job.params must be a dict"):
            J(name="b", application="greet", params=["who=x"])
        with self.assertRaisesRegex(TypeError, "Job.launch_params must be"):
            J(name="b", application="greet", launch_params="-n 2")
        with self.assertRaisesRegex(ValueError, "an application or a command"):
            J(name="b").save()
        with self.assertRaises(copal.CopalError):
            J(name="b", application="greet", launch_params=[""]).save()
        with self.assertRaises(copal.CopalError):
            J(name="b", application="greet", params={"nope": "1"}).save()
        self.assertEqual(J.objects.filter(name="b").count(), 0)
        self.b.launcher("--job-mode", "serial", "--idle-ttl", "2")
        self.b.wait_launchers()
        self.assertEqual(J.objects.all().by_state(), {"JOB_FINISHED": 2})
        lines = _read(out).split("\n")
        self.assertIn("it's me", lines)
        self.assertIn("direct d", lines)
        for w in ("pre", "post", "dpost"):
            self.assertIn(w, lines)

    def test_app_params(self):
        # App.params declares a templated executable's parameters
        # (AppParam: name, default, has_default), as copal app --param
        A, J = copal.App, copal.Job
        out = os.path.join(self.b.tmp, "pout")
        a = A(name="tpl", executable="echo {{ who }}-{{ n }} >>%s" % out,
              params={"who": None, "n": "1"})
        a.save()
        g = A.objects.get("tpl")
        self.assertEqual(g.params, {"who": None, "n": "1"})
        self.assertEqual(g, a)
        # the broker's own view agrees
        ls = self.b.run("copal", "ls", "apps").stdout
        self.assertIn("who n=1", ls)
        # a placeholder not declared, and bad types: refused, nothing saved
        # (an app without parameters keeps its braces literally)
        with self.assertRaisesRegex(copal.CopalError, "not a declared"):
            A(name="bad", executable="echo {{ x }}", params={"y": "1"}).save()
        with self.assertRaisesRegex(TypeError, "App.params must be a dict"):
            A(name="bad", executable="echo", params=["x"]).save()
        with self.assertRaisesRegex(TypeError, "App.params: names"):
            A(name="bad", executable="echo {{ x }}", params={"x": 1}).save()
        self.assertNotIn("bad", [x.name for x in A.objects.all()])
        # a task must give "who" (no default); "n" falls back to 1
        with self.assertRaises(copal.CopalError):
            J(name="nowho", application="tpl").save()
        J(name="t1", application="tpl", params={"who": "a b"}).save()
        J(name="t2", application="tpl", params={"who": "c", "n": "7"}).save()
        self.b.launcher("--job-mode", "serial", "--idle-ttl", "2")
        self.b.wait_launchers()
        self.assertEqual(J.objects.all().by_state(), {"JOB_FINISHED": 2})
        self.assertEqual(sorted(_read(out).split("\n")[:2]),
                         ["a b-1", "c-7"])

    def test_filter_batch_job(self):
        J = copal.Job
        J(name="in_job", application="sim").save()
        self.b.run("copal", "submit-launch", "-n", "1", "-t", "2",
                   "--job-mode", "serial")
        wait_for(lambda: J.objects.get(name="in_job").state ==
                 "JOB_FINISHED", 60, "the batch job's run")

        def queues():
            return json.loads(self.b.run("copal", "ls", "queues", "--format",
                                         "json").stdout)
        # its launcher gone idle, the job ends: then one by hand
        wait_for(lambda: queues()[0]["state"] == "FINISHED", 60,
                 "the batch job's end")
        J(name="by_hand", application="sim").save()
        self.b.launcher("--job-mode", "serial", "--idle-ttl", "1")
        self.b.wait_launchers()
        self.assertEqual(J.objects.get(name="by_hand").state, "JOB_FINISHED")
        jobs = queues()
        bj = jobs[0]["id"]
        # the package's view of the same job
        b = copal.BatchJob.objects.get(bj)
        self.assertEqual((b.state, b.scheduler, b.scheduler_id),
                         ("FINISHED", jobs[0]["scheduler"],
                          jobs[0]["scheduler_id"]))
        self.assertEqual([x.id for x in copal.BatchJob.objects.filter(
            state="FINISHED")], [bj])
        self.assertEqual(copal.BatchJob.objects.filter(state="QUEUED"), [])
        self.assertEqual([j.name for j in J.objects.filter(batch_job=bj)],
                         ["in_job"])
        want = json.loads(self.b.run("copal", "ls", "--batch-job", str(bj),
                                     "--format", "json").stdout)
        self.assertEqual([j.uuid for j in J.objects.filter(batch_job=bj)],
                         [w["uuid"] for w in want])
        self.assertEqual(J.objects.filter(batch_job=bj,
                                          state="FAILED").count(), 0)
        ev = [e for e in copal.EventLog.objects.all()
              if e.name == "in_job" and e.to_state == "RUNNING"]
        self.assertEqual([e.batch_job_id for e in ev], [bj])
        self.assertEqual(ev[0].scheduler_job_id, jobs[0]["scheduler_id"])
        for bad in (0, -1, "1", True, 1.5):
            with self.assertRaisesRegex(ValueError, "batch_job"):
                J.objects.filter(batch_job=bad)
        with self.assertRaises(copal.CopalError) as cm:
            J.objects.filter(batch_job=bj + 100).count()
        self.assertEqual(cm.exception.code, pb.STATUS_NOTFOUND)


def _task_env_script(tmp, name, body):
    path = os.path.join(tmp, name + ".py")
    with open(path, "w") as f:
        f.write("import os, sys\nsys.path.insert(0, %r)\nimport copal\n" %
                os.path.dirname(os.path.dirname(copal.__file__)))
        f.write(body)
    return "%s %s" % (PY, path)


class TestLauncher(BrokerCase):
    def test_dag_from_python_run_by_launcher(self):
        out = os.path.join(self.b.tmp, "order")
        copal.App(name="rec", executable="sh -c 'echo $COPAL_TASK_NAME "
                  ">>%s'" % out).save()
        a = copal.Job(name="A", workflow="d", application="rec")
        b = copal.Job(name="B", workflow="d", application="rec", parents=[a])
        c = copal.Job(name="C", workflow="d", application="rec", parents=[a])
        d = copal.Job(name="D", workflow="d", application="rec",
                      parents=[b, c])
        copal.Job.objects.bulk_create([a, b, c, d])
        self.assertEqual(copal.Job.objects.filter(workflow="d").by_state(),
                         {"READY": 1, "AWAITING_PARENTS": 3})
        self.b.launcher("--job-mode", "serial", "--idle-ttl", "2")
        self.b.wait_launchers()
        qs = copal.Job.objects.filter(workflow="d")
        self.assertEqual(qs.by_state(), {"JOB_FINISHED": 4})
        with open(out) as f:
            order = f.read().split()
        self.assertEqual(order[0], "A")
        self.assertEqual(order[3], "D")
        self.assertEqual(sorted(order[1:3]), ["B", "C"])
        self.assertEqual([e.to_state for e in d.history()],
                         ["AWAITING_PARENTS", "READY", "RUNNING", "RUN_DONE",
                          "JOB_FINISHED"])
        self.check_events_equal_export()

    def test_current_job_spawns_and_kills(self):
        spawner = _task_env_script(self.b.tmp, "spawner", """
me = copal.current_job()
assert me.name == "spawner", me
assert me.state == "RUNNING", me.state
k1 = me.spawn_child(name="kid1", application="kid")
k2 = me.spawn_child(name="kid2", application="kid", workflow="other",
                    args="two")
doomed = me.spawn_child(name="doomed", application="kid")
doomed.kill()
open("spawned", "w").write("%d %d %d" % (k1.id, k2.id, doomed.id))
""")
        copal.App(name="spawner", executable=spawner).save()
        copal.App(name="kid", executable="sh -c 'echo parents="
                  "$COPAL_PARENT_IDS wf=$COPAL_WORKFLOW'").save()
        s = copal.Job(name="spawner", workflow="dyn", application="spawner")
        s.save()
        self.b.launcher("--job-mode", "serial", "--idle-ttl", "3")
        self.b.wait_launchers()
        s.refresh_from_db()
        self.assertEqual(s.state, "JOB_FINISHED")
        kids = {j.name: j for j in s.children}
        self.assertEqual(sorted(kids), ["doomed", "kid1", "kid2"])
        self.assertEqual(kids["kid1"].workflow, "dyn")
        self.assertEqual(kids["kid2"].workflow, "other")
        for k in ("kid1", "kid2"):
            self.assertEqual(kids[k].state, "JOB_FINISHED")
            self.assertEqual(kids[k].parent_ids, [s.id])
            self.assertEqual([e.to_state for e in kids[k].history()][:2],
                             ["AWAITING_PARENTS", "READY"])
        self.assertEqual(kids["doomed"].state, "USER_KILLED")
        data = os.path.join(self.b.db, "data")
        outs = subprocess.run(["sh", "-c", "cat %s/dyn/kid1_*/kid1.out" %
                               data], capture_output=True, text=True).stdout
        self.assertEqual(outs.strip(), "parents=%d wf=dyn" % s.id)

    def test_kill_running(self):
        copal.App(name="sleeper", executable="sleep 60").save()
        j = copal.Job(name="sleeper", application="sleeper")
        j.save()
        self.b.launcher("--job-mode", "serial", "--idle-ttl", "2")
        wait_for(lambda: j.refresh_from_db().state == "RUNNING", 30,
                 "RUNNING")
        self.assertEqual(j.kill(), 1)
        self.b.wait_launchers()
        self.assertEqual(j.refresh_from_db().state, "USER_KILLED")

    def check_events_equal_export(self):
        exp = self.b.run("copal", "export", "--format", "jsonl").stdout
        want = [json.loads(x) for x in exp.splitlines()]
        got = [{"seq": e.seq, "task": e.task_id, "uuid": e.uuid,
                "name": e.name, "workflow": e.workflow,
                "from": e.from_state, "to": e.to_state,
                "time_us": e.time_us, "launcher": e.launcher,
                "lease": e.lease_id, "node": e.node,
                "attempt": e.attempt, "return_code": e.return_code,
                "message": e.message, "commit_us": e.commit_us,
                "user": e.user, "batch_job": e.batch_job_id,
                "scheduler_job_id": e.scheduler_job_id}
               for e in copal.EventLog.objects.all()]
        self.assertGreater(len(got), 10)
        for w in want:
            del w["time"]
        self.assertEqual(got, want)
        self.assertTrue(any(g["launcher"] and g["node"] for g in got))
        # a window and a workflow, as copal export --since/--until/--wf
        mid = got[len(got) // 2]["time_us"]
        late = got[-2]["time_us"]
        for kw, args in (({"workflow": "d"}, ["--wf", "d"]),
                         ({"since": mid / 1e6, "until": late / 1e6},
                          ["--since", "%.6f" % (mid / 1e6), "--until",
                           "%.6f" % (late / 1e6)])):
            exp = self.b.run("copal", "export", *args).stdout
            want = [json.loads(x)["seq"] for x in exp.splitlines()]
            got2 = [e.seq for e in copal.EventLog.objects.filter(**kw)]
            self.assertEqual(got2, want, kw)
            self.assertTrue(got2)
        # the analytics of the same events
        t, n = copal.throughput_report(workflow="d")
        self.assertEqual(n, [1, 2, 3, 4])
        self.assertEqual(t, sorted(t))
        t, busy = copal.utilization_report(workflow="d")
        self.assertEqual(len(busy), 8)
        self.assertEqual(busy[-1], 0)
        self.assertLessEqual(max(busy), 1)  # one serial slot
        t2, idle = copal.available_nodes(4, workflow="d")
        self.assertEqual(idle, [4 - x for x in busy])


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class TestTls(unittest.TestCase):
    def test_tls_with_db_credentials(self):
        port = _free_port()
        url = "tls+tcp://127.0.0.1:%d" % port
        b = Broker("broker_tcp = %s\n" % url)
        try:
            c = copal.connect(db=b.db, url=url)
            copal.App(name="sim", executable="/bin/true").save()
            copal.Job(name="over-tls", application="sim").save()
            self.assertEqual(copal.Job.objects.get(name="over-tls").state,
                             "READY")
            self.assertEqual(c.url, url)
            # a wrong token: the broker's refusal
            copal.connect(db=b.db, url=url, token="0" * 64)
            with self.assertRaises(copal.CopalError) as cm:
                copal.Job.objects.count()
            self.assertEqual(cm.exception.code, pb.STATUS_PERM)
            self.assertTrue(cm.exception.remote)
        finally:
            copal.disconnect()
            b.close()


class TestInstall(unittest.TestCase):
    def test_cmake_install_then_import(self):
        cmake = os.environ.get("COPAL_CMAKE")
        if not cmake:
            self.skipTest("COPAL_CMAKE not set")
        prefix = tempfile.mkdtemp(prefix="copal-py-inst-")
        try:
            subprocess.run([cmake, "--install", BIN, "--prefix", prefix],
                           check=True, capture_output=True)
            sitedir = os.environ["COPAL_PYTHON_DIR"]
            b = Broker()
            try:
                env = dict(b.env)
                env["PYTHONPATH"] = os.path.join(prefix, sitedir)
                env.pop("COPAL_CLIENT_LIBRARY", None)
                p = subprocess.run([PY, "-c", """
import copal, copal._wire as w
print(copal.__file__)
print(w._library_path())
copal.App(name="a", executable="/bin/true").save()
print(len(copal.App.objects.all()))
"""], env=env, capture_output=True, text=True, cwd=prefix)
                self.assertEqual(p.returncode, 0, p.stderr)
                lines = p.stdout.split()
                self.assertTrue(lines[0].startswith(prefix), lines)
                self.assertTrue(lines[1].startswith(prefix), lines)
                self.assertTrue(os.path.exists(lines[1]), lines)
                self.assertEqual(lines[2], "1")
            finally:
                b.close()
        finally:
            shutil.rmtree(prefix, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
