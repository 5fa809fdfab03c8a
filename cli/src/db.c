// Finding the database, reaching its broker, starting and stopping it.
//
// The broker of a database DIR listens on DIR/sock/broker, logs to
// DIR/log/broker.log and writes its pid to DIR/broker.pid once it listens.
// Verbs that need the broker start it when it is not running (set
// COPAL_NO_AUTOSTART=1 to get an error instead).
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define START_WAIT_S 10.0
#define STOP_WAIT_S 10.0
#define BROKER_NAME "copal-broker"

extern char **environ;

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

// ------------------------------------------------------------ finding

int
cli_db_find(char *out, size_t len)
{
	const char *db = cli_db_opt ? cli_db_opt : getenv(CPL_ENV_DB);
	char abs[PATH_MAX], conf[PATH_MAX + 16];
	struct stat st;
	if (db == NULL || *db == '\0') {
		cli_err("no database selected: give --db DIR or activate one "
		    "(eval \"$(copal activate DIR)\")");
		return EXIT_NOTFOUND;
	}
	if (realpath(db, abs) == NULL) {
		cli_err("database %s: %s", db, strerror(errno));
		return EXIT_NOTFOUND;
	}
	cpl_dbpath(abs, CPL_DB_CONF, conf, sizeof(conf));
	if (stat(conf, &st) != 0) {
		cli_err("%s is not a copal database (no copal.conf): make one "
		    "with copal init %s", abs, db);
		return EXIT_NOTFOUND;
	}
	if (strlen(abs) >= len) {
		cli_err("database path too long: %s", abs);
		return EXIT_ERR;
	}
	memcpy(out, abs, strlen(abs) + 1);
	return 0;
}

int
cli_conf_get(const char *db, const char *key, char *buf, size_t len)
{
	char path[PATH_MAX + 16], line[1024];
	int found = -1;
	cpl_dbpath(db, CPL_DB_CONF, path, sizeof(path));
	buf[0] = '\0';
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp)) {
		char *p = line, *eq, *k, *v, *e;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || (eq = strchr(p, '=')) == NULL)
			continue;
		k = p;
		for (e = eq; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		if (strcmp(k, key) != 0)
			continue;
		v = eq + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		for (e = v + strlen(v); e > v && (e[-1] == '\n' ||
		         e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		snprintf(buf, len, "%s", v);
		found = 0;
	}
	fclose(fp);
	return found;
}

void
cli_db_remember(const char *path)
{
	const char *home = getenv("HOME");
	char dir[PATH_MAX], file[PATH_MAX + 16], line[PATH_MAX + 2];
	if (home == NULL || *home == '\0')
		return;
	snprintf(dir, sizeof(dir), "%s/.copal", home);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		cli_warn("cannot create %s: %s", dir, strerror(errno));
		return;
	}
	snprintf(file, sizeof(file), "%s/databases", dir);
	FILE *fp = fopen(file, "a+");
	if (fp == NULL) {
		cli_warn("cannot open %s: %s", file, strerror(errno));
		return;
	}
	rewind(fp);
	while (fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, path) == 0) {
			fclose(fp);
			return;
		}
	}
	fprintf(fp, "%s\n", path);
	fclose(fp);
}

// ------------------------------------------------------------ broker pid

// True if pid runs the broker program and is not a zombie.
static bool
is_broker(long pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	// "pid (comm) S ..."
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	if (open == NULL || close == NULL || close[1] != ' ')
		return false;
	*close = '\0';
	if (strcmp(open + 1, BROKER_NAME) != 0)
		return false;
	return close[2] != 'Z' && close[2] != 'X';
}

long
cli_broker_pid(const char *db)
{
	char path[PATH_MAX + 16];
	long pid = 0;
	cpl_dbpath(db, CPL_DB_BROKER_PID, path, sizeof(path));
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	if (fscanf(fp, "%ld", &pid) != 1)
		pid = 0;
	fclose(fp);
	return pid > 0 && is_broker(pid) ? pid : 0;
}

// ------------------------------------------------------------ calls

// Seconds to wait for one answer: $COPAL_TIMEOUT, else the library's
// default (10 s, 3 attempts). A resent request is answered from the
// broker's reply cache, so a long delete can be given more time safely.
static int
timeout_ms(void)
{
	const char *e = getenv("COPAL_TIMEOUT");
	if (e && *e) {
		char *end;
		double s = strtod(e, &end);
		if (*end == '\0' && s > 0 && s < 86400)
			return (int)(s * 1000);
		cli_warn("COPAL_TIMEOUT=%s is not a number of seconds", e);
	}
	return 0;
}

static int
open_local(const char *db, cpl_client **out)
{
	cpl_client_opts o;
	char url[PATH_MAX + 32];
	int rv;
	memset(&o, 0, sizeof(o));
	o.db_dir = db;
	o.timeout_ms = timeout_ms();
	if ((rv = cpl_db_socket_url(db, url, sizeof(url))) != 0) {
		cli_err("database path %s is too long for a local socket", db);
		return EXIT_ERR;
	}
	o.url = url;
	if ((rv = cpl_client_open(&o, out)) != 0) {
		cli_err("cannot open a client for %s: %s", db, cpl_strerror(rv));
		return cli_exit_for(rv);
	}
	return 0;
}

// One ping with a short timeout: 0 if the broker answered.
static int
ping(cpl_client *c, int timeout_ms, Copal__Reply **rep)
{
	Copal__Reply *r = NULL;
	int rv = cpl_call_ping_once(c, timeout_ms, &r);
	if (rv == 0 && rep)
		*rep = r;
	else
		cpl_reply_free(r);
	return rv;
}

int
cli_call_rc(cpl_client *c, int rv)
{
	if (rv == 0)
		return 0;
	if (!cpl_client_err_remote(c)) {
		const char *db = cpl_client_db(c);
		cli_err("no answer from the broker%s%s: %s", db[0] ? " of " : "",
		    db, cpl_client_errmsg(c));
		return EXIT_ERR;
	}
	cli_err("%s", cpl_client_errmsg(c));
	return cli_exit_for(rv);
}

int
cli_connect(cpl_client **out)
{
	char db[PATH_MAX];
	const char *url = getenv(CPL_ENV_URL);
	int rc;
	if (url && *url) {
		// a remote broker: the database directory, if any, only gives
		// the token
		cpl_client_opts o;
		memset(&o, 0, sizeof(o));
		if ((cli_db_opt || getenv(CPL_ENV_DB)) &&
		    cli_db_find(db, sizeof(db)) == 0)
			o.db_dir = db;
		o.url = url;
		o.timeout_ms = timeout_ms();
		if ((rc = cpl_client_open(&o, out)) != 0) {
			cli_err("cannot open a client for %s: %s", url,
			    cpl_strerror(rc));
			return cli_exit_for(rc);
		}
		return 0;
	}
	if ((rc = cli_db_find(db, sizeof(db))) != 0)
		return rc;
	if (cli_broker_pid(db) == 0) {
		const char *no = getenv("COPAL_NO_AUTOSTART");
		bool started;
		long pid;
		if (no && *no && strcmp(no, "0") != 0) {
			cli_err("no broker for %s: run copal server start", db);
			return EXIT_ERR;
		}
		if ((rc = cli_broker_start(db, NULL, &started, &pid)) != 0)
			return rc;
		if (started)
			fprintf(stderr, "copal: started the broker for %s "
			    "(pid %ld)\n", db, pid);
	}
	return open_local(db, out);
}

// ------------------------------------------------------------ start, stop

void
cli_find_program(const char *name, const char *env, const char *subdir,
    char *buf, size_t len, bool *search)
{
	const char *e = getenv(env);
	char exe[PATH_MAX];
	*search = false;
	if (e && *e) {
		snprintf(buf, len, "%s", e);
		return;
	}
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(buf, len, "%s/%s", exe, name);
			if (access(buf, X_OK) == 0)
				return;
			snprintf(buf, len, "%s/../%s/%s", exe, subdir, name);
			if (access(buf, X_OK) == 0)
				return;
		}
	}
	snprintf(buf, len, "%s", name);
	*search = true;
}

// Prints the last lines of the broker's log, to explain a failed start.
static void
show_log_tail(const char *db)
{
	char path[PATH_MAX + 32], line[1024];
	char *lines[5] = { NULL };
	size_t n = 0;
	cpl_dbpath(db, CPL_DB_BROKER_LOG, path, sizeof(path));
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return;
	while (fgets(line, sizeof(line), fp)) {
		free(lines[n % 5]);
		lines[n % 5] = strdup(line);
		n++;
	}
	fclose(fp);
	if (n)
		fprintf(stderr, "last lines of %s:\n", path);
	for (size_t i = n > 5 ? n - 5 : 0; i < n; i++) {
		if (lines[i % 5])
			fprintf(stderr, "  %s", lines[i % 5]);
		free(lines[i % 5]);
		lines[i % 5] = NULL;
	}
}

static int
spawn_broker(const char *db, const char *tcp, pid_t *pid)
{
	char bin[PATH_MAX + 64];
	bool search;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	sigset_t none, all;
	char *argv[6];
	int argc = 0, rv;

	cli_find_program(BROKER_NAME, "COPAL_BROKER_BIN", "broker", bin,
	    sizeof(bin), &search);
	argv[argc++] = bin;
	argv[argc++] = (char *)"--db";
	argv[argc++] = (char *)db;
	if (tcp && *tcp) {
		argv[argc++] = (char *)"--tcp";
		argv[argc++] = (char *)tcp;
	}
	argv[argc] = NULL;

	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rv = search ? posix_spawnp(pid, bin, &fa, &attr, argv, environ) :
	              posix_spawn(pid, bin, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rv != 0) {
		cli_err("cannot run %s: %s%s", bin, strerror(rv),
		    search ? " (not next to copal nor in PATH; set "
		             "COPAL_BROKER_BIN)" : "");
		return EXIT_ERR;
	}
	return 0;
}

int
cli_broker_start(const char *db, const char *tcp, bool *started,
    long *pidp)
{
	Copal__Reply *pong = NULL;
	cpl_client *c = NULL;
	char conf_tcp[512];
	pid_t pid = 0;
	int rc, rv = CPL_ETIMEOUT;
	bool child_gone = false;

	*started = false;
	if ((rc = open_local(db, &c)) != 0)
		return rc;
	if (cli_broker_pid(db) == 0) {
		if (tcp == NULL && cli_conf_get(db, "broker_tcp", conf_tcp,
		                       sizeof(conf_tcp)) == 0 && conf_tcp[0])
			tcp = conf_tcp;
		if ((rc = spawn_broker(db, tcp, &pid)) != 0) {
			cpl_client_close(c);
			return rc;
		}
		*started = true;
	}
	double deadline = now_s() + START_WAIT_S;
	while (now_s() < deadline) {
		if (pid && !child_gone) {
			int status;
			if (waitpid(pid, &status, WNOHANG) == pid) {
				child_gone = true;
				// 3: the database is locked by a broker that is
				// starting right now; wait for it to answer
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 3) {
					if (WIFEXITED(status))
						cli_err("the broker for %s exited "
						    "with status %d", db,
						    WEXITSTATUS(status));
					else
						cli_err("the broker for %s died "
						    "(signal %d)", db,
						    WTERMSIG(status));
					show_log_tail(db);
					cpl_client_close(c);
					return EXIT_ERR;
				}
				*started = false;
			}
		}
		if ((rv = ping(c, 250, &pong)) == 0)
			break;
		if (rv != CPL_ETIMEOUT && rv != CPL_ECONNECT)
			break;
		sleep_ms(50);
	}
	cpl_client_close(c);
	if (rv != 0) {
		cli_err("the broker for %s does not answer: %s (see %s/%s)", db,
		    cpl_strerror(rv), db, cpl_dbpart_name(CPL_DB_BROKER_LOG));
		return EXIT_ERR;
	}
	// the pid of the broker that answered, not of a pid file that may
	// be older than it
	if (pidp)
		*pidp = pong->ping ? (long)pong->ping->pid : 0;
	cpl_reply_free(pong);
	return 0;
}

int
cli_broker_stop(const char *db, bool *was_running)
{
	char path[PATH_MAX + 16];
	long pid = cli_broker_pid(db);
	*was_running = pid != 0;
	if (pid == 0)
		return 0;
	if (kill((pid_t)pid, SIGTERM) != 0) {
		cli_err("cannot signal the broker (pid %ld): %s", pid,
		    strerror(errno));
		return EXIT_ERR;
	}
	double deadline = now_s() + STOP_WAIT_S;
	while (is_broker(pid) && now_s() < deadline)
		sleep_ms(20);
	if (is_broker(pid)) {
		cli_warn("the broker (pid %ld) did not stop in %.0f s: killing "
		    "it", pid, STOP_WAIT_S);
		kill((pid_t)pid, SIGKILL);
		deadline = now_s() + 5.0;
		while (is_broker(pid) && now_s() < deadline)
			sleep_ms(20);
		if (is_broker(pid)) {
			cli_err("the broker (pid %ld) is still there", pid);
			return EXIT_ERR;
		}
		cpl_dbpath(db, CPL_DB_BROKER_PID, path, sizeof(path));
		unlink(path);
	}
	return 0;
}

int
cli_ping(const char *db, Copal__Reply **rep)
{
	cpl_client *c;
	int rc;
	if ((rc = open_local(db, &c)) != 0)
		return rc;
	int rv = ping(c, 3000, rep);
	cpl_client_close(c);
	return rv;
}
