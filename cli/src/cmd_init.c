// Verbs about databases themselves: init, activate, deactivate, which, log.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "copal/conf.h"
#include "copal/tlsgen.h"
#include "copal/tmpl.h"

const cli_opt init_opts[] = { { NULL, 0, 0, NULL, NULL } };
const cli_opt activate_opts[] = { { NULL, 0, 0, NULL, NULL } };

enum { KEY_LINES = 'n', KEY_FOLLOW = 'f' };

const cli_opt which_opts[] = {
	{ "list", 'l', OPT_NOARG, NULL,
	    "also list the databases in ~/.copal/databases" },
	{ NULL, 0, 0, NULL, NULL },
};

const cli_opt log_opts[] = {
	{ "lines", KEY_LINES, OPT_ARG, "N", "show the last N lines (20)" },
	{ "follow", KEY_FOLLOW, OPT_NOARG, NULL,
	    "keep printing new lines (Ctrl-C ends)" },
	{ NULL, 0, 0, NULL, NULL },
};

static int
one_operand(cli_parse *p, const char *what, const char **out)
{
	if (p->nargs != 1)
		return cli_usage(p->nargs ? "too many arguments" : "%s missing",
		    what);
	*out = p->argv[p->first];
	return 0;
}

// Options-only verbs: parse, allowing no option of their own.
static int
parse_simple(cli_parse *p, const cli_verb *v, int argc, char **argv)
{
	const char *arg;
	int k, rc;
	if ((rc = cli_parse_init(p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(p, &arg)) != -1)
		if (k == '?')
			return EXIT_USAGE;
	return 0;
}

// ------------------------------------------------------------ init

// An absolute path made from path lexically ("." and ".." removed).
static int
abs_path(const char *path, char *out, size_t len)
{
	char buf[PATH_MAX * 2];
	if (path[0] == '/') {
		snprintf(buf, sizeof(buf), "%s", path);
	} else {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return -1;
		snprintf(buf, sizeof(buf), "%s/%s", cwd, path);
	}
	size_t n = 0;
	char *save = NULL;
	out[0] = '\0';
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			char *s = strrchr(out, '/');
			n = s ? (size_t)(s - out) : 0;
			out[n] = '\0';
			continue;
		}
		size_t cl = strlen(c);
		if (n + cl + 2 > len)
			return -1;
		out[n++] = '/';
		memcpy(out + n, c, cl + 1);
		n += cl;
	}
	if (n == 0)
		snprintf(out, len, "/");
	return 0;
}

static int
mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -1;
	struct stat st;
	if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

static int
write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (fchmod(fd, mode) != 0 || write(fd, text, len) != (ssize_t)len) {
		int e = errno;
		close(fd);
		unlink(path);
		errno = e;
		return -1;
	}
	return close(fd);
}

int
cmd_init(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *dir = NULL;
	char abs[PATH_MAX], path[PATH_MAX + 32], url[PATH_MAX + 32];
	int rc;
	struct stat st;
	if ((rc = parse_simple(&p, v, argc, argv)) != 0 ||
	    (rc = one_operand(&p, "DIR", &dir)) != 0)
		goto out;
	if (abs_path(dir, abs, sizeof(abs)) != 0) {
		cli_err("%s: path too long", dir);
		rc = EXIT_ERR;
		goto out;
	}
	if (cpl_db_socket_url(abs, url, sizeof(url)) != 0) {
		cli_err("%s: path too long for the broker's local socket "
		    "(%s/%s must fit in %d bytes): choose a shorter path", dir,
		    abs, cpl_dbpart_name(CPL_DB_SOCKET), CPL_DB_SOCKET_MAX);
		rc = EXIT_ERR;
		goto out;
	}
	cpl_dbpath(abs, CPL_DB_CONF, path, sizeof(path));
	if (stat(path, &st) == 0) {
		cli_err("%s already holds a copal database", abs);
		rc = EXIT_ERR;
		goto out;
	}
	rc = EXIT_ERR;
	if (mkdir_p(abs, 0755) != 0) {
		cli_err("cannot create %s: %s", abs, strerror(errno));
		goto out;
	}
	static const struct {
		cpl_dbpart part;
		mode_t mode;
	} dirs[] = { { CPL_DB_DATA_DIR, 0755 }, { CPL_DB_LOG_DIR, 0700 },
		{ CPL_DB_SOCK_DIR, 0700 }, { CPL_DB_QSUBMIT_DIR, 0755 },
		{ CPL_DB_TMPL_DIR, 0755 } };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		cpl_dbpath(abs, dirs[i].part, path, sizeof(path));
		if (mkdir_p(path, dirs[i].mode) != 0 ||
		    chmod(path, dirs[i].mode) != 0) {
			cli_err("cannot create %s: %s", path, strerror(errno));
			goto out;
		}
	}
	uint8_t raw[32];
	char hex[65];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		cli_err("no random bytes for the secret: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	cpl_dbpath(abs, CPL_DB_SECRET, path, sizeof(path));
	if (write_file(path, hex, 64, 0600) != 0) {
		cli_err("cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	// the database's TLS identity: the broker's certificate on
	// tls+tcp://, the one its clients pin and present (ECDSA P-256)
	char terr[PATH_MAX + 64];
	if (cpl_tls_generate(abs, terr, sizeof(terr)) != 0) {
		cli_err("%s", terr);
		goto out;
	}
	// the default job-script templates, for the site to edit
	for (size_t i = 0; tmpl_schedulers[i]; i++) {
		const char *text = tmpl_default(tmpl_schedulers[i]);
		cpl_dbpath_file(abs, CPL_DB_TMPL_DIR, path, sizeof(path),
		    "%s.tmpl", tmpl_schedulers[i]);
		if (write_file(path, text, strlen(text), 0644) != 0) {
			cli_err("cannot write %s: %s", path, strerror(errno));
			goto out;
		}
	}
	// the settings file last: its presence marks a complete database.
	// Its text comes from the settings table (common/src/conf.c).
	char *conf_text = NULL;
	size_t conf_len = 0;
	FILE *mf = open_memstream(&conf_text, &conf_len);
	if (mf == NULL)
		cli_oom();
	int wrv = cpl_conf_write_default(mf);
	fclose(mf);
	if (wrv != 0 || conf_text == NULL)
		cli_oom();
	cpl_dbpath(abs, CPL_DB_CONF, path, sizeof(path));
	if (write_file(path, conf_text, conf_len, 0644) != 0) {
		cli_err("cannot write %s: %s", path, strerror(errno));
		free(conf_text);
		goto out;
	}
	free(conf_text);
	cli_db_remember(abs);
	printf("*************************************************************\n"
	       "  Successfully created copal DB at: %s\n"
	       "  Use `source copalactivate %s` to begin working.\n"
	       "*************************************************************\n",
	    abs, dir);
	rc = 0;
out:
	cli_parse_free(&p);
	return rc;
}

// ------------------------------------------------------------ activate

// DIR, or the name of a database listed in ~/.copal/databases.
static int
find_named(const char *name, char *out, size_t len)
{
	char conf[PATH_MAX + 16], file[PATH_MAX], line[PATH_MAX + 2];
	struct stat st;
	const char *home = getenv("HOME");
	cpl_dbpath(name, CPL_DB_CONF, conf, sizeof(conf));
	if (stat(conf, &st) == 0) {
		if (realpath(name, out) == NULL)
			return -1;
		return 0;
	}
	if (strchr(name, '/') || home == NULL)
		return -1;
	snprintf(file, sizeof(file), "%s/.copal/databases", home);
	FILE *fp = fopen(file, "r");
	int found = -1;
	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = '\0';
		const char *base = strrchr(line, '/');
		base = base ? base + 1 : line;
		cpl_dbpath(line, CPL_DB_CONF, conf, sizeof(conf));
		if (strcmp(base, name) == 0 && stat(conf, &st) == 0 &&
		    strlen(line) < len) {
			memcpy(out, line, strlen(line) + 1);
			found = 0;
		}
	}
	fclose(fp);
	return found;
}

int
cmd_activate(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *dir = NULL;
	char db[PATH_MAX];
	int rc;
	if ((rc = parse_simple(&p, v, argc, argv)) != 0)
		goto out;
	if (p.nargs == 0 && cli_db_opt)
		dir = cli_db_opt;
	else if ((rc = one_operand(&p, "DIR", &dir)) != 0)
		goto out;
	if (find_named(dir, db, sizeof(db)) != 0) {
		cli_err("%s is not a copal database (make one with copal init "
		    "%s)", dir, dir);
		rc = EXIT_NOTFOUND;
		goto out;
	}
	const char *no = getenv("COPAL_NO_AUTOSTART");
	if (!(no && *no && strcmp(no, "0") != 0)) {
		long pid = cli_broker_pid(db);
		bool started;
		if (pid == 0)
			fprintf(stderr, "Launching the copal broker for %s ...",
			    db);
		long now;
		if ((rc = cli_broker_start(db, NULL, &started, &now)) != 0)
			goto out;
		if (pid == 0)
			fprintf(stderr, " done (pid %ld)\n", now);
	}
	const char *name = strrchr(db, '/');
	name = name && name[1] ? name + 1 : db;
	printf("export COPAL_DB=");
	shell_quote(stdout, db);
	printf(";\nif [ -z \"${_COPAL_OLD_PS1+x}\" ]; then "
	       "_COPAL_OLD_PS1=\"${PS1-}\"; fi;\n");
	printf("PS1=");
	char tag[PATH_MAX + 16];
	snprintf(tag, sizeof(tag), "[copal: %s] ", name);
	shell_quote(stdout, tag);
	printf("\"${_COPAL_OLD_PS1}\"; export PS1;\n");
	rc = 0;
out:
	cli_parse_free(&p);
	return rc;
}

int
cmd_deactivate(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	int rc;
	if ((rc = parse_simple(&p, v, argc, argv)) == 0 && p.nargs)
		rc = cli_usage("no arguments expected");
	cli_parse_free(&p);
	if (rc)
		return rc;
	printf("unset COPAL_DB;\n"
	       "if [ -n \"${_COPAL_OLD_PS1+x}\" ]; then "
	       "PS1=\"$_COPAL_OLD_PS1\"; export PS1; unset _COPAL_OLD_PS1; "
	       "fi;\n");
	return 0;
}

// ------------------------------------------------------------ which

int
cmd_which(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	bool list = false;
	char db[PATH_MAX] = "";
	int k, rc;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (k == 'l')
			list = true;
		else {
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (p.nargs) {
		rc = cli_usage("no arguments expected");
		goto out;
	}
	if (!list) {
		if ((rc = cli_db_find(db, sizeof(db))) == 0)
			printf("%s\n", db);
		goto out;
	}
	const char *cur = cli_db_opt ? cli_db_opt : getenv(CPL_ENV_DB);
	if (cur && *cur && realpath(cur, db) == NULL)
		db[0] = '\0';
	const char *home = getenv("HOME");
	char file[PATH_MAX], line[PATH_MAX + 2];
	snprintf(file, sizeof(file), "%s/.copal/databases", home ? home : "");
	FILE *fp = home ? fopen(file, "r") : NULL;
	static const tcol cols[] = { { "current", COL_STR },
		{ "database", COL_STR }, { "broker", COL_STR } };
	table *t = table_open(FMT_TABLE, cols, 3, stdout);
	bool seen = false;
	while (fp && fgets(line, sizeof(line), fp)) {
		char conf[PATH_MAX + 16], broker[64];
		struct stat st;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0')
			continue;
		cpl_dbpath(line, CPL_DB_CONF, conf, sizeof(conf));
		long pid = cli_broker_pid(line);
		if (stat(conf, &st) != 0)
			snprintf(broker, sizeof(broker), "(database missing)");
		else if (pid)
			snprintf(broker, sizeof(broker), "running, pid %ld", pid);
		else
			snprintf(broker, sizeof(broker), "stopped");
		bool is_cur = db[0] && strcmp(db, line) == 0;
		seen |= is_cur;
		const char *cells[] = { is_cur ? "*" : "", line, broker };
		table_row(t, cells);
	}
	if (db[0] && !seen) {
		long pid = cli_broker_pid(db);
		char broker[64];
		snprintf(broker, sizeof(broker), pid ? "running, pid %ld" :
		    "stopped", pid);
		const char *cells[] = { "*", db, broker };
		table_row(t, cells);
	}
	table_close(t);
	if (fp)
		fclose(fp);
out:
	cli_parse_free(&p);
	return rc;
}

// ------------------------------------------------------------ log

// Prints the last n lines of fp (positioned anywhere) and leaves it at the
// end.
static void
tail_lines(FILE *fp, uint32_t n)
{
	char buf[8192];
	if (fseeko(fp, 0, SEEK_END) != 0)
		return;
	off_t end = ftello(fp), pos = end, start = 0;
	uint32_t lines = 0;
	bool first = true;
	// walk back in blocks counting newlines
	while (pos > 0 && lines < n) {
		size_t chunk = pos > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)pos;
		pos -= (off_t)chunk;
		fseeko(fp, pos, SEEK_SET);
		if (fread(buf, 1, chunk, fp) != chunk)
			break;
		for (size_t i = chunk; i-- > 0;) {
			if (buf[i] != '\n')
				continue;
			if (first && pos + (off_t)i == end - 1) {
				first = false; // the file's final newline
				continue;
			}
			first = false;
			if (++lines >= n) {
				start = pos + (off_t)i + 1;
				break;
			}
		}
	}
	if (n == 0)
		start = end;
	fseeko(fp, start, SEEK_SET);
	size_t got;
	while ((got = fread(buf, 1, sizeof(buf), fp)) > 0)
		fwrite(buf, 1, got, stdout);
	fflush(stdout);
}

int
cmd_log(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	uint32_t n = 20;
	bool follow = false;
	char db[PATH_MAX], path[PATH_MAX + 32];
	int k, rc;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (k == KEY_LINES)
			rc = cli_u32("--lines", arg, &n);
		else if (k == KEY_FOLLOW)
			follow = true;
		else
			rc = EXIT_USAGE;
		if (rc)
			goto out;
	}
	if (p.nargs) {
		rc = cli_usage("no arguments expected");
		goto out;
	}
	if ((rc = cli_db_find(db, sizeof(db))) != 0)
		goto out;
	cpl_dbpath(db, CPL_DB_BROKER_LOG, path, sizeof(path));
	FILE *fp = fopen(path, "r");
	if (fp == NULL && !follow) {
		cli_err("no log yet: %s: %s", path, strerror(errno));
		rc = EXIT_NOTFOUND;
		goto out;
	}
	if (fp)
		tail_lines(fp, n);
	while (follow) {
		struct stat st, fst;
		char buf[8192];
		size_t got;
		if (fp) {
			clearerr(fp);
			while ((got = fread(buf, 1, sizeof(buf), fp)) > 0)
				fwrite(buf, 1, got, stdout);
			fflush(stdout);
		}
		struct timespec ts = { 0, 200 * 1000000L };
		nanosleep(&ts, NULL);
		// reopen when the log was replaced or truncated
		if (stat(path, &st) != 0)
			continue;
		if (fp && fstat(fileno(fp), &fst) == 0 && st.st_ino == fst.st_ino &&
		    st.st_size >= ftello(fp))
			continue;
		if (fp)
			fclose(fp);
		fp = fopen(path, "r");
	}
	if (fp)
		fclose(fp);
out:
	cli_parse_free(&p);
	return rc;
}
