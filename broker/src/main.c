// copal-broker: the daemon that owns a copal database.
//
//   copal-broker --db DIR [--tcp tls+tcp://HOST:PORT] [--log-level LEVEL]
//                [--contexts N] [--log-stderr]
//
// Runs in the foreground (`copal server start` puts it in the background).
// One broker per database: the store's lock refuses a second one.
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "broker.h"
#include "copal/conf.h"
#include "copal/dbdir.h"
#include "copal/version.h"
#include "server.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: copal-broker --db DIR [--tcp tls+tcp://HOST:PORT] "
	    "[--log-level error|warn|notice|info|debug]\n"
	    "                    [--contexts N] [--log-stderr] [--version]\n"
	    "Serves the copal database in DIR until SIGTERM or SIGINT.\n");
}

static int
parse_level(const char *s)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = { { "error", LOG_ERR }, { "warn", LOG_WARN },
		{ "notice", LOG_NOTICE }, { "info", LOG_INFO },
		{ "debug", LOG_DEBUG } };
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(s, levels[i].name) == 0)
			return levels[i].level;
	return -1;
}

// Writes this process's pid to path through a temporary file and a
// rename. Returns 0, or -1 with errno set.
static int
write_pid_file(const char *path)
{
	char tmp[PATH_MAX + 64];
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	FILE *pf = fopen(tmp, "w");
	if (pf == NULL)
		return -1;
	fprintf(pf, "%ld\n", (long)getpid());
	int bad = ferror(pf);
	if (fclose(pf) != 0 || bad || rename(tmp, path) != 0) {
		int e = errno ? errno : EIO;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "tcp", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "contexts", required_argument, NULL, 'c' },
		{ "log-stderr", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *db = NULL, *tcp = NULL;
	// one per launcher of a 4,096-node allocation with its heartbeat
	// beside (conn_bench: at 4,096 launchers 256 contexts queued claims
	// for 1.5 s at p99, 4,096 for 0.57 s; about 3 KB each)
	int contexts = 4096, opt;
	bool to_stderr = false;
	char dir[PATH_MAX], path[PATH_MAX + 32], url[PATH_MAX + 32];

	while ((opt = getopt_long(argc, argv, "d:t:l:c:ehV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			db = optarg;
			break;
		case 't':
			tcp = optarg;
			break;
		case 'l':
			if ((cpl_log_level = parse_level(optarg)) < 0) {
				fprintf(stderr, "copal-broker: unknown log level %s\n",
				    optarg);
				return 2;
			}
			break;
		case 'c':
			contexts = atoi(optarg);
			if (contexts < 1 || contexts > 65536) {
				fprintf(stderr, "copal-broker: --contexts 1..65536\n");
				return 2;
			}
			break;
		case 'e':
			to_stderr = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("copal-broker %s\n", COPAL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (db == NULL && (db = getenv(CPL_ENV_DB)) == NULL) {
		usage(stderr);
		return 2;
	}
	if (realpath(db, dir) == NULL) {
		fprintf(stderr, "copal-broker: %s: %s\n", db, strerror(errno));
		return 1;
	}
	// the settings: a file with any fault stops the broker here, rather
	// than one setting silently taking its default
	static cpl_conf conf;
	char cerr[1024];
	int crv = cpl_conf_load(dir, &conf, cerr, sizeof(cerr));
	if (crv == CPL_ENOTFOUND) {
		fprintf(stderr, "copal-broker: %s is not a copal database "
		    "(make one with copal init)\n", dir);
		return 1;
	}
	if (crv != 0) {
		fprintf(stderr, "copal-broker: %s\n", cerr[0] ? cerr :
		    cpl_strerror(crv));
		// `copal server start` discards the broker's stderr: leave
		// the reason in the log too (copal log)
		if (!to_stderr && cpl_dbpath(dir, CPL_DB_BROKER_LOG, path,
		        sizeof(path)) == 0 && cpl_log_add(NULL, path, NULL) == 0) {
			LOG(LOG_ERR, "conf", "%s", cerr[0] ? cerr :
			    cpl_strerror(crv));
			cpl_log_close();
		}
		return crv == CPL_EINVAL ? 2 : 1;
	}
	if (tcp == NULL && conf.broker_tcp[0])
		tcp = conf.broker_tcp;
	if (cpl_db_socket_url(dir, url, sizeof(url)) != 0) {
		fprintf(stderr, "copal-broker: path %s too long for a local "
		    "socket (at most about 90 bytes)\n", dir);
		return 1;
	}
	cpl_dbpath(dir, CPL_DB_LOG_DIR, path, sizeof(path));
	mkdir(path, 0700);
	cpl_dbpath(dir, CPL_DB_SOCK_DIR, path, sizeof(path));
	mkdir(path, 0700);
	chmod(path, 0700);
	if (!to_stderr) {
		cpl_dbpath(dir, CPL_DB_BROKER_LOG, path, sizeof(path));
		if (cpl_log_add(NULL, path, NULL) != 0) {
			fprintf(stderr, "copal-broker: cannot open %s: %s\n", path,
			    strerror(errno));
			return 1;
		}
	}

	// every descriptor the system lets us have: idle TCP peers must not
	// take the last ones from local clients (net.c budgets them)
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}

	// signals are taken by sigwait in this thread only
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	cpl_store *st;
	cpl_store_opts so;
	memset(&so, 0, sizeof(so));
	so.uuid_v7 = strcmp(conf.task_uuids, "time") == 0;
	int rv = cpl_store_open(dir, &so, &st);
	if (rv) {
		LOG(LOG_ERR, "open", "cannot open the database in %s: %s", dir,
		    cpl_strerror(rv));
		fprintf(stderr, "copal-broker: %s: %s\n", dir, cpl_strerror(rv));
		return rv == CPL_ELOCKED ? 3 : 1;
	}
	uint8_t token[64];
	size_t token_len = 0;
	if (cpl_read_secret(dir, token, sizeof(token), &token_len) != 0 &&
	    tcp) {
		fprintf(stderr, "copal-broker: no readable %s/%s for TCP\n",
		    dir, cpl_dbpart_name(CPL_DB_SECRET));
		cpl_store_close(st);
		return 1;
	}
	server_opts o;
	memset(&o, 0, sizeof(o));
	o.store = st;
	o.db_dir = dir;
	o.ipc_url = url;
	o.tcp_url = tcp;
	o.tcp_insecure = strcmp(conf.broker_tcp_insecure, "true") == 0;
	o.max_conns = (int)conf.broker_max_connections;
	o.token = token;
	o.token_len = token_len;
	o.contexts = contexts;
	// The pid file, whole, before the first ping can be answered: the
	// store's lock makes this broker the only one of the database, and
	// `copal server start` reads the file as soon as a ping answers. A
	// reader sees the old file or the new one, never an empty one.
	cpl_dbpath(dir, CPL_DB_BROKER_PID, path, sizeof(path));
	if (write_pid_file(path) != 0)
		LOG(LOG_WARN, "pid", "cannot write %s: %s", path,
		    strerror(errno));
	server *srv;
	if ((rv = server_start(&o, &srv)) != 0) {
		fprintf(stderr, "copal-broker: cannot listen: %s (see the log)\n",
		    cpl_strerror(rv));
		unlink(path);
		cpl_store_close(st);
		return 1;
	}
	// where we are, for job scripts and launchers on other hosts
	if (broker_addr_write(dir, server_tcp_url(srv),
	        conf.broker_advertise) != 0)
		LOG(LOG_WARN, "listen", "cannot write %s/%s",
		    dir, cpl_dbpart_name(CPL_DB_BROKER_ADDR));
	int sig = 0;
	sigwait(&sigs, &sig);
	LOG(LOG_NOTICE, "signal", "signal %d: stopping", sig);
	server_stop(srv);
	unlink(path);
	broker_addr_remove(dir);
	cpl_store_close(st);
	cpl_log_close();
	return 0;
}
