// copal server --add-user / --drop-user / --list-users /
// --list-active-connections: the users of a database, through its broker
// (which checks that the caller is an admin).
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

// One user request; the reply (status 0) in *rep, or an exit code.
static int
users_call(Copal__Request *req, Copal__Reply **rep)
{
	cpl_client *c;
	int rc = cli_connect(&c);
	if (rc)
		return rc;
	Copal__Reply *r = NULL;
	int rv = cpl_client_call(c, req, &r);
	if (rv) {
		rc = cli_call_rc(c, rv);
		cpl_client_close(c);
		return rc;
	}
	if (r->status != 0) {
		cli_err("%s", r->error[0] ? r->error :
		                          cpl_strerror((int)r->status));
		rc = cli_exit_for((int)r->status);
		copal__reply__free_unpacked(r, NULL);
		cpl_client_close(c);
		return rc;
	}
	if ((int)r->body_case != (int)req->body_case) {
		cli_err("the broker answered another request (an older "
		    "broker? it does not know users)");
		copal__reply__free_unpacked(r, NULL);
		cpl_client_close(c);
		return EXIT_ERR;
	}
	cpl_client_close(c);
	*rep = r;
	return 0;
}

// Every directory above the socket must let others through (x) for a
// local user to reach it: says which one does not.
static void
check_reach(const char *db, const char *user)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "%s", db);
	for (;;) {
		if (stat(path, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			fprintf(stderr, "copal: note: %s is mode %03o: %s reaches "
			    "the local socket only if it may pass through "
			    "(chmod o+x %s)\n", path, (unsigned)(st.st_mode & 0777),
			    user, path);
			return;
		}
		char *slash = strrchr(path, '/');
		if (slash == NULL || slash == path)
			return;
		*slash = '\0';
	}
}

static int
write_credential(const char *out, const char *db,
    const Copal__UserAddReply *r)
{
	int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		cli_err("cannot write the credential to %s: %s%s", out,
		    strerror(errno), errno == EEXIST ? " (give another "
		    "--out FILE)" : "");
		return -1;
	}
	FILE *fp = fdopen(fd, "w");
	if (fp == NULL) {
		close(fd);
		return -1;
	}
	fprintf(fp, "# copal credential of user %s (role %s) of database %s\n"
	    "# hand it to %s only; use it over TCP with\n"
	    "#   COPAL_CREDENTIAL=THIS_FILE COPAL_BROKER_URL=tls+tcp://HOST:PORT "
	    "copal ls\n"
	    "# copal server --drop-user %s revokes it\n"
	    "token %s\n%s%s%s", r->user->name, r->user->role, db,
	    r->user->name, r->user->name, r->token, r->cert_pem, r->key_pem,
	    r->ca_pem);
	int bad = ferror(fp);
	if (fclose(fp) != 0 || bad) {
		cli_err("cannot write %s: %s", out, strerror(errno));
		unlink(out);
		return -1;
	}
	return 0;
}

int
users_add(const char *db, const char *name, const char *role,
    const char *out)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__UserAddRequest body = COPAL__USER_ADD_REQUEST__INIT;
	Copal__Reply *rep = NULL;
	char path[PATH_MAX];
	body.name = (char *)name;
	body.role = (char *)(role ? role : "");
	req.body_case = COPAL__REQUEST__BODY_USER_ADD;
	req.user_add = &body;
	// the file first: a credential nobody can be given is no use
	snprintf(path, sizeof(path), "%s", out ? out : "");
	if (!out)
		snprintf(path, sizeof(path), "%s.copal-credential", name);
	if (access(path, F_OK) == 0) {
		cli_err("%s exists: give another --out FILE", path);
		return EXIT_ERR;
	}
	int rc = users_call(&req, &rep);
	if (rc)
		return rc;
	const Copal__UserAddReply *r = rep->user_add;
	if (write_credential(path, db, r) != 0) {
		// the user is there, without a credential anyone holds
		fprintf(stderr, "copal: user %s was added; drop it and add it "
		    "again to make another credential\n", r->user->name);
		copal__reply__free_unpacked(rep, NULL);
		return EXIT_ERR;
	}
	printf("added user %s, role %s", r->user->name, r->user->role);
	if (r->user->uid >= 0)
		printf(", local socket as uid %" PRId64, r->user->uid);
	else
		printf(" (no unix user of that name: TCP only)");
	printf("\ncredential for TCP%s: %s (hand it to %s)\n",
	    r->cert_pem[0] ? "/TLS" : "", path, r->user->name);
	if (r->user->uid >= 0)
		check_reach(db, r->user->name);
	explicit_bzero(r->token, strlen(r->token));
	explicit_bzero(r->key_pem, strlen(r->key_pem));
	copal__reply__free_unpacked(rep, NULL);
	return 0;
}

int
users_drop(const char *db, const char *name)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__UserDropRequest body = COPAL__USER_DROP_REQUEST__INIT;
	Copal__Reply *rep = NULL;
	(void)db;
	body.name = (char *)name;
	req.body_case = COPAL__REQUEST__BODY_USER_DROP;
	req.user_drop = &body;
	int rc = users_call(&req, &rep);
	if (rc)
		return rc;
	printf("dropped user %s (its credential is revoked; %u open "
	    "connection%s closed)\n", name, rep->user_drop->closed,
	    rep->user_drop->closed == 1 ? "" : "s");
	copal__reply__free_unpacked(rep, NULL);
	return 0;
}

int
users_list(const char *db)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__UserListRequest body = COPAL__USER_LIST_REQUEST__INIT;
	Copal__Reply *rep = NULL;
	char t[40];
	(void)db;
	req.body_case = COPAL__REQUEST__BODY_USER_LIST;
	req.user_list = &body;
	int rc = users_call(&req, &rep);
	if (rc)
		return rc;
	printf("%-20s %-6s %-8s %s\n", "USER", "ROLE", "UID", "ADDED");
	for (size_t i = 0; i < rep->user_list->n_users; i++) {
		const Copal__User *u = rep->user_list->users[i];
		char uid[24];
		snprintf(uid, sizeof(uid), u->uid >= 0 ? "%" PRId64 : "-",
		    u->uid);
		if (u->owner)
			snprintf(t, sizeof(t), "(owner)");
		else
			fmt_time_us(u->created_us, t, sizeof(t));
		printf("%-20s %-6s %-8s %.19s\n", u->name, u->role, uid, t);
	}
	copal__reply__free_unpacked(rep, NULL);
	return 0;
}

int
users_conns(const char *db)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__ConnListRequest body = COPAL__CONN_LIST_REQUEST__INIT;
	Copal__Reply *rep = NULL;
	char t[40];
	(void)db;
	req.body_case = COPAL__REQUEST__BODY_CONN_LIST;
	req.conn_list = &body;
	int rc = users_call(&req, &rep);
	if (rc)
		return rc;
	printf("%-16s %-6s %-8s %-22s %-19s %9s %s\n", "USER", "ROLE", "UID",
	    "ADDRESS", "SINCE", "REQUESTS", "CREDENTIAL");
	for (size_t i = 0; i < rep->conn_list->n_conns; i++) {
		const Copal__Connection *c = rep->conn_list->conns[i];
		char uid[24];
		snprintf(uid, sizeof(uid), c->uid >= 0 ? "%" PRId64 : "-",
		    c->uid);
		fmt_time_us(c->since_us, t, sizeof(t));
		printf("%-16s %-6s %-8s %-22s %.19s %9" PRIu64 " %s\n",
		    c->user[0] ? c->user : "-", c->role[0] ? c->role : "-", uid,
		    c->address, t, c->requests,
		    c->credential[0] ? c->credential : "(none yet)");
	}
	copal__reply__free_unpacked(rep, NULL);
	return 0;
}
