// copal-launcher: runs tasks of a copal database on the nodes of this
// allocation (or this host). `copal launcher ...` runs this program.
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/conf.h"
#include "copal/params.h"
#include "copal/version.h"
#include "launcher.h"
#include "reach.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: copal launcher --job-mode serial|mpi [options]\n"
	    "  --db DIR                 database (default: $COPAL_DB)\n"
	    "  --wf-filter W            only tasks of workflow W (refused when W\n"
	    "                           has no task, unless --persistent or\n"
	    "                           --idle-ttl is given)\n"
	    "  --consume-all            any workflow (the default)\n"
	    "  --tag K=V                only tasks tagged K=V (repeat: all of "
	    "them)\n"
	    "  --time-limit-minutes M   stop after M minutes (fractions allowed)\n"
	    "  --idle-ttl S             exit after S seconds with nothing to do "
	    "(default 10)\n"
	    "  --persistent             never exit for idleness\n"
	    "  --max-concurrent N       tasks (serial) or launches (mpi) at once\n"
	    "                           (default 256 serial, 16 mpi)\n"
	    "  --gpus-per-node G        GPUs to hand out per node (default 0)\n"
	    "  --node-offset K          skip the first K discovered nodes\n"
	    "  --num-nodes N            use at most N nodes\n"
	    "  --lease-ttl S            lease time-to-live in seconds (default 30)\n"
	    "  --grace S                SIGTERM to SIGKILL at the end (default 10)\n"
	    "  --starter openmpi|mpich|srun|aprun   MPI starter (mpi mode)\n"
	    "  --mpi-template T         starter command with {ranks} {rpn} "
	    "{nnodes} {tpr}\n"
	    "                           {hosts} {hostslots} {cmd}\n"
	    "  --order fifo|long_large_first   tasks of equal priority: oldest\n"
	    "                           first, or largest nodes x wall time first\n"
	    "                           (default: copal.conf's claim_order)\n"
	    "  --fast-fail-seconds S    a task that fails to start, dies by a\n"
	    "                           signal or exits with a --fast-fail-codes\n"
	    "                           code within S s is started again, up to\n"
	    "                           3 times (default: copal.conf's, 20; 0: off)\n"
	    "  --fast-fail-codes L      exit codes, e.g. 1,127 (default: copal.conf's)\n"
	    "  -v, --verbose            log every state change\n"
	    "  -V, --version            print the version and exit\n");
}

static int
num(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "job-mode", required_argument, NULL, 'm' },
		{ "db", required_argument, NULL, 'd' },
		{ "wf-filter", required_argument, NULL, 'w' },
		{ "consume-all", no_argument, NULL, 'a' },
		{ "tag", required_argument, NULL, 'k' },
		{ "time-limit-minutes", required_argument, NULL, 't' },
		{ "idle-ttl", required_argument, NULL, 'i' },
		{ "persistent", no_argument, NULL, 'p' },
		{ "max-concurrent", required_argument, NULL, 'c' },
		{ "gpus-per-node", required_argument, NULL, 'g' },
		{ "node-offset", required_argument, NULL, 'o' },
		{ "num-nodes", required_argument, NULL, 'n' },
		{ "lease-ttl", required_argument, NULL, 'l' },
		{ "grace", required_argument, NULL, 'G' },
		{ "starter", required_argument, NULL, 's' },
		{ "mpi-template", required_argument, NULL, 'T' },
		{ "order", required_argument, NULL, 'O' },
		{ "fast-fail-seconds", required_argument, NULL, 'F' },
		{ "fast-fail-codes", required_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		// for `copal completion bash`: this table, one option a line
		{ "list-options", no_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	launcher_opts o;
	double v;
	int opt;
	bool mode_set = false, max_set = false, ttl_set = false;
	bool idle_set = false, order_set = false, ff_set = false;
	bool codes_set = false;
	memset(&o, 0, sizeof(o));
	o.idle_ttl_s = 10;
	o.lease_ttl_ms = 30000;
	o.grace_s = 10;
	o.log_level = 5;
	while ((opt = getopt_long(argc, argv, "vhV", lo, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (strcmp(optarg, "serial") == 0)
				o.mode = MODE_SERIAL;
			else if (strcmp(optarg, "mpi") == 0)
				o.mode = MODE_MPI;
			else {
				fprintf(stderr, "copal launcher: --job-mode is "
				    "serial or mpi, not %s\n", optarg);
				return 2;
			}
			mode_set = true;
			break;
		case 'd':
			o.db_dir = optarg;
			break;
		case 'w':
			o.wf_filter = optarg;
			break;
		case 'a':
			o.wf_filter = NULL;
			break;
		case 't':
			if (num(optarg, 0.001, 1e6, &o.time_limit_min)) {
				fprintf(stderr, "copal launcher: bad "
				    "--time-limit-minutes %s\n", optarg);
				return 2;
			}
			break;
		case 'i':
			if (num(optarg, 0, 1e7, &o.idle_ttl_s)) {
				fprintf(stderr, "copal launcher: bad --idle-ttl %s\n",
				    optarg);
				return 2;
			}
			idle_set = true;
			break;
		case 'p':
			o.persistent = true;
			break;
		case 'c':
			if (num(optarg, 1, 65536, &v)) {
				fprintf(stderr, "copal launcher: --max-concurrent "
				    "1..65536\n");
				return 2;
			}
			o.max_concurrent = (uint32_t)v;
			max_set = true;
			break;
		case 'g':
			if (num(optarg, 0, 64, &v)) {
				fprintf(stderr, "copal launcher: --gpus-per-node "
				    "0..64\n");
				return 2;
			}
			o.gpus_per_node = (uint32_t)v;
			break;
		case 'o':
			if (num(optarg, 0, 1e6, &v)) {
				fprintf(stderr, "copal launcher: bad --node-offset\n");
				return 2;
			}
			o.node_offset = (size_t)v;
			break;
		case 'n':
			if (num(optarg, 1, 1e6, &v)) {
				fprintf(stderr, "copal launcher: bad --num-nodes\n");
				return 2;
			}
			o.node_limit = (size_t)v;
			break;
		case 'l':
			ttl_set = true;
			if (num(optarg, 1, 3600, &v)) {
				fprintf(stderr, "copal launcher: --lease-ttl 1..3600\n");
				return 2;
			}
			o.lease_ttl_ms = (uint32_t)(v * 1000);
			break;
		case 'G':
			if (num(optarg, 0, 3600, &o.grace_s)) {
				fprintf(stderr, "copal launcher: --grace 0..3600\n");
				return 2;
			}
			break;
		case 's':
			if (mpi_template_for(optarg) == NULL) {
				fprintf(stderr, "copal launcher: unknown starter %s "
				    "(openmpi, mpich, srun, aprun)\n", optarg);
				return 2;
			}
			o.starter = optarg;
			break;
		case 'T':
			o.mpi_template = optarg;
			break;
		case 'k': {
			char why[200];
			if (cpl_tag_check(optarg, why, sizeof(why)) != 0) {
				fprintf(stderr, "copal launcher: --tag: %s\n", why);
				return 2;
			}
			if (o.ntags == CPL_TAGS_MAX) {
				fprintf(stderr, "copal launcher: more than %u "
				    "--tag\n", CPL_TAGS_MAX);
				return 2;
			}
			o.tags[o.ntags++] = optarg;
			break;
		}
		case 'O':
			if (strcmp(optarg, "fifo") == 0)
				o.claim_order = ORDER_FIFO;
			else if (strcmp(optarg, "long_large_first") == 0)
				o.claim_order = ORDER_LONG_LARGE_FIRST;
			else {
				fprintf(stderr, "copal launcher: --order is fifo "
				    "or long_large_first, not %s\n", optarg);
				return 2;
			}
			order_set = true;
			break;
		case 'F':
			if (num(optarg, 0, 86400, &o.fast_fail_s)) {
				fprintf(stderr, "copal launcher: --fast-fail-seconds "
				    "0..86400\n");
				return 2;
			}
			ff_set = true;
			break;
		case 'C':
			if (cpl_code_list_parse(optarg, o.fast_fail_codes) != 0) {
				fprintf(stderr, "copal launcher: --fast-fail-codes "
				    "takes exit codes 1..255 separated by commas, "
				    "not %s\n", optarg);
				return 2;
			}
			codes_set = true;
			break;
		case 'v':
			o.log_level = 7;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("copal-launcher %s\n", COPAL_VERSION);
			return 0;
		case 'L': // "--NAME 1" when it takes a value, else "--NAME 0"
			for (const struct option *p = lo; p->name; p++)
				if (strcmp(p->name, "list-options") != 0)
					printf("--%s %d\n", p->name,
					    p->has_arg == required_argument);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "copal launcher: unexpected argument %s\n",
		    argv[optind]);
		return 2;
	}
	if (!mode_set) {
		fprintf(stderr, "copal launcher: --job-mode serial|mpi is "
		    "required\n");
		usage(stderr);
		return 2;
	}
	if (o.db_dir == NULL && (o.db_dir = getenv(CPL_ENV_DB)) == NULL) {
		fprintf(stderr, "copal launcher: no database: give --db DIR or "
		    "activate one (copal activate DIR)\n");
		return 3;
	}
	{
		// the database's settings are the defaults of options not
		// given; a database reached by URL alone may have none here
		static cpl_conf conf;
		char err[1024];
		int crv = cpl_conf_load(o.db_dir, &conf, err, sizeof(err));
		if (crv != 0 && crv != CPL_ENOTFOUND) {
			fprintf(stderr, "copal launcher: %s\n", err);
			return 2;
		}
		if (crv == CPL_ENOTFOUND)
			cpl_conf_defaults(&conf, o.db_dir);
		if (!ttl_set && crv == 0)
			o.lease_ttl_ms = conf.lease_ttl_seconds * 1000u;
		if (!order_set)
			o.claim_order = strcmp(conf.claim_order,
			    "long_large_first") == 0 ? ORDER_LONG_LARGE_FIRST :
			    ORDER_FIFO;
		if (!ff_set)
			o.fast_fail_s = conf.fast_fail_seconds;
		if (!codes_set)
			cpl_code_list_parse(conf.fast_fail_codes,
			    o.fast_fail_codes);
	}
	// the batch job this launcher runs in: the job script exports
	// copal's id; the scheduler's comes from its own environment
	const char *bj = getenv("COPAL_BATCH_JOB_ID");
	if (bj && bj[0]) {
		if (num(bj, 1, 1e15, &v) != 0) {
			fprintf(stderr, "copal launcher: COPAL_BATCH_JOB_ID=%s "
			    "is not a batch job id\n", bj);
			return 2;
		}
		o.bjob_id = (uint64_t)v;
		static const char *const ids[] = { "SLURM_JOB_ID", "PBS_JOBID",
			"COBALT_JOBID", "COPAL_SCHED_JOB_ID", NULL };
		for (size_t i = 0; ids[i] && o.sched_job_id == NULL; i++) {
			const char *e = getenv(ids[i]);
			if (e && e[0] && strlen(e) < 128)
				o.sched_job_id = e;
		}
	}
	if (!max_set)
		o.max_concurrent = o.mode == MODE_MPI ? 16 : 256;
	if (o.mpi_template == NULL) {
		const char *st = o.starter ? o.starter :
		    getenv("SLURM_JOB_ID") ? "srun" : "openmpi";
		o.mpi_template = mpi_template_for(st);
	}
	// a broker it cannot reach: said now, not after a minute of waiting
	int rv = launcher_reach(o.db_dir);
	if (rv)
		return 1;
	// a filter that matches nothing is a typo, unless told to wait
	if (o.wf_filter && !o.persistent && !idle_set &&
	    fit_check_filter(&o) == CPL_ENOTFOUND)
		return 3;
	rv = launcher_run(&o);
	if (rv) {
		fprintf(stderr, "copal launcher: %s\n", cpl_strerror(rv));
		return rv == CPL_ENOTFOUND ? 3 : 1;
	}
	return 0;
}
