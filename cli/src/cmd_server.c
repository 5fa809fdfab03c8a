// copal server start|stop|status: the broker daemon of a database.
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum {
	KEY_TCP = 410,
	KEY_ADD_USER,
	KEY_ROLE,
	KEY_DROP_USER,
	KEY_LIST_USERS,
	KEY_LIST_CONNS,
	KEY_OUT
};

const cli_opt server_opts[] = {
	{ "tcp", KEY_TCP, OPT_ARG, "URL",
	    "start: also listen on URL (tls+tcp://HOST:PORT; default: "
	    "copal.conf's broker_tcp)" },
	{ "add-user", KEY_ADD_USER, OPT_ARG, "NAME",
	    "let user NAME use the database (its unix user on the local "
	    "socket; a credential file for TCP); admins only" },
	{ "role", KEY_ROLE, OPT_ARG, "ROLE",
	    "--add-user: read (default), write or admin" },
	{ "out", KEY_OUT, OPT_ARG, "FILE",
	    "--add-user: write the credential to FILE (default: "
	    "NAME.copal-credential)" },
	{ "drop-user", KEY_DROP_USER, OPT_ARG, "NAME",
	    "revoke user NAME and close its connections; admins only" },
	{ "list-users", KEY_LIST_USERS, OPT_NOARG, NULL,
	    "the users and their roles; admins only" },
	{ "list-active-connections", KEY_LIST_CONNS, OPT_NOARG, NULL,
	    "every open connection: user, role, uid, address, since, "
	    "requests; admins only" },
	{ NULL, 0, 0, NULL, NULL },
};

static int
do_start(const char *db, const char *tcp)
{
	bool started;
	long before = cli_broker_pid(db), pid;
	int rc = cli_broker_start(db, tcp, &started, &pid);
	if (rc)
		return rc;
	if (started)
		printf("broker for %s started (pid %ld)\n", db, pid);
	else
		printf("broker for %s already running (pid %ld)%s\n", db,
		    pid, tcp && before ? ": --tcp ignored, stop it first" : "");
	return 0;
}

static int
do_stop(const char *db, const char *tcp)
{
	(void)tcp;
	bool was;
	long pid = cli_broker_pid(db);
	int rc = cli_broker_stop(db, &was);
	if (rc)
		return rc;
	if (was)
		printf("broker for %s stopped (pid %ld)\n", db, pid);
	else
		printf("no broker running for %s\n", db);
	return 0;
}

static void
uptime(uint64_t us, char *buf, size_t len)
{
	uint64_t s = us / 1000000u;
	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d %02" PRIu64 ":%02" PRIu64
		    ":%02" PRIu64, s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64,
		    s / 3600, s / 60 % 60, s % 60);
}

static int
do_status(const char *db, const char *tcp)
{
	(void)tcp;
	Copal__Reply *rep = NULL;
	long pid = cli_broker_pid(db);
	char buf[64], t[40];
	if (pid == 0) {
		printf("no broker running for %s\n", db);
		return EXIT_ERR;
	}
	int rv = cli_ping(db, &rep);
	if (rv) {
		cli_err("the broker for %s (pid %ld) does not answer: %s", db,
		    pid, cpl_strerror(rv));
		return EXIT_ERR;
	}
	const Copal__PingReply *p = rep->ping;
	uint64_t total = 0;
	for (size_t s = 0; s < p->n_by_state; s++)
		total += p->by_state[s];
	printf("broker for %s: running\n", db);
	printf("%-16s%" PRIu32 "\n", "pid:", p->pid);
	printf("%-16s%s\n", "version:", p->version);
	printf("%-16s%s\n", "database:", p->db_dir);
	for (size_t i = 0; i < p->n_listen_urls; i++) {
		printf("%-16s%s\n", i == 0 ? "listening:" : "", p->listen_urls[i]);
		// the broker takes plain tcp:// only with broker_tcp_insecure
		if (strncmp(p->listen_urls[i], "tcp://", 6) == 0)
			printf("%-16s%s\n", "warning:", "plain TCP without TLS "
			    "(broker_tcp_insecure = true): the token travels in "
			    "clear");
	}
	fmt_time_us(p->started_us, t, sizeof(t));
	uptime(p->broker_time_us > p->started_us ?
	        p->broker_time_us - p->started_us : 0, buf, sizeof(buf));
	printf("%-16s%.19s (up %s)\n", "started:", t, buf);
	printf("%-16s%" PRIu32 "\n", "leases:", p->leases);
	printf("%-16s%" PRIu64 "\n", "tasks:", total);
	for (size_t s = 1; s < p->n_by_state; s++)
		if (p->by_state[s])
			printf("  %-20s%" PRIu64 "\n", cpl_state_name((int)s),
			    p->by_state[s]);
	copal__reply__free_unpacked(rep, NULL);
	return 0;
}

int
cmd_server(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg, *tcp = NULL, *add = NULL, *drop = NULL;
	const char *role = NULL, *out = NULL;
	bool list = false, conns = false;
	char db[PATH_MAX];
	int k, rc;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (k == KEY_TCP)
			tcp = arg;
		else if (k == KEY_ADD_USER)
			add = arg;
		else if (k == KEY_ROLE)
			role = arg;
		else if (k == KEY_OUT)
			out = arg;
		else if (k == KEY_DROP_USER)
			drop = arg;
		else if (k == KEY_LIST_USERS)
			list = true;
		else if (k == KEY_LIST_CONNS)
			conns = true;
		else {
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if ((add != NULL) + (drop != NULL) + list + conns > 1) {
		rc = cli_usage("one of --add-user, --drop-user, --list-users, "
		    "--list-active-connections at a time");
		goto out;
	}
	if ((role || out) && add == NULL) {
		rc = cli_usage("--role and --out are for --add-user");
		goto out;
	}
	if (add || drop || list || conns) {
		if (p.nargs != 0 || tcp) {
			rc = cli_usage("--add-user, --drop-user, --list-users and "
			    "--list-active-connections take no action");
			goto out;
		}
		// a remote broker (COPAL_BROKER_URL): no database directory
		// here; it names the database in the credential
		const char *url = getenv(CPL_ENV_URL);
		if (url && *url)
			snprintf(db, sizeof(db), "%s", url);
		else if ((rc = cli_db_find(db, sizeof(db))) != 0)
			goto out;
		rc = add ? users_add(db, add, role, out) :
		    drop ? users_drop(db, drop) : list ? users_list(db) :
		    users_conns(db);
		goto out;
	}
	if (p.nargs != 1) {
		rc = cli_usage("say start, stop or status");
		goto out;
	}
	static const struct {
		const char *name;
		int (*fn)(const char *db, const char *tcp);
	} actions[] = { { "start", do_start }, { "stop", do_stop },
		{ "status", do_status } };
	const char *action = p.argv[p.first];
	size_t i = 0;
	while (i < sizeof(actions) / sizeof(actions[0]) &&
	    strcmp(actions[i].name, action) != 0)
		i++;
	if (i == sizeof(actions) / sizeof(actions[0])) {
		rc = cli_usage("unknown action %s: say start, stop or status",
		    action);
		goto out;
	}
	if (tcp && actions[i].fn != do_start) {
		rc = cli_usage("--tcp is for start");
		goto out;
	}
	if ((rc = cli_db_find(db, sizeof(db))) == 0)
		rc = actions[i].fn(db, tcp);
out:
	cli_parse_free(&p);
	return rc;
}
