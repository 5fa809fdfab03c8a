// The users of a database besides its owner: <db>/users, kept in memory
// (a lookup per connection and per TCP request, under a read lock) and
// written back whole, by rename, on every change.
//
// A file in the database directory, not an LMDB table: the broker reads
// it before anything else, a person can read it, and the store (shared by
// every request) is not touched by the rare change of a user. The broker
// is its only writer (user requests come through it, from an admin); it
// keeps no token, only the SHA-256 of each.
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "copal/dbdir.h"
#include "copal/tlsgen.h"
#include "users.h"

#define MAX_USERS 4096

struct user {
	char name[USER_NAME_MAX + 1];
	int role;
	int64_t uid;       // -1: no unix user of that name
	uint64_t created_us;
	uint8_t hash[32];  // SHA-256 of the token
};

struct users {
	pthread_rwlock_t lk;
	char path[PATH_MAX];
	char owner[USER_NAME_MAX + 1];
	uid_t owner_uid;
	struct user *v;
	size_t n;
	bool any_local;
};

// ---------------------------------------------------------------- roles

static const char *const roles[] = { "none", "read", "write", "admin" };

const char *
role_name(int role)
{
	return role >= 0 && role <= ROLE_ADMIN ? roles[role] : "none";
}

int
role_parse(const char *s)
{
	for (int r = ROLE_READ; r <= ROLE_ADMIN; r++)
		if (strcmp(s, roles[r]) == 0)
			return r;
	return ROLE_NONE;
}

int
role_needed(Copal__Request__BodyCase body)
{
	switch (body) {
	case COPAL__REQUEST__BODY_QUERY:
	case COPAL__REQUEST__BODY_COUNT:
	case COPAL__REQUEST__BODY_HISTORY:
	case COPAL__REQUEST__BODY_EXPORT:
	case COPAL__REQUEST__BODY_APP_LIST:
	case COPAL__REQUEST__BODY_PING:
	case COPAL__REQUEST__BODY_WORKFLOW_LIST:
	case COPAL__REQUEST__BODY_LEASE_LIST:
	case COPAL__REQUEST__BODY_BATCH_LIST:
	case COPAL__REQUEST__BODY_BACKLOG:
		return ROLE_READ;
	case COPAL__REQUEST__BODY_USER_ADD:
	case COPAL__REQUEST__BODY_USER_DROP:
	case COPAL__REQUEST__BODY_USER_LIST:
	case COPAL__REQUEST__BODY_CONN_LIST:
	case COPAL__REQUEST__BODY_ARCHIVE_PICK:
	case COPAL__REQUEST__BODY_ARCHIVE:
		return ROLE_ADMIN;
	default:
		return ROLE_WRITE;
	}
}

bool
users_body(Copal__Request__BodyCase body)
{
	return body == COPAL__REQUEST__BODY_USER_ADD ||
	    body == COPAL__REQUEST__BODY_USER_DROP ||
	    body == COPAL__REQUEST__BODY_USER_LIST ||
	    body == COPAL__REQUEST__BODY_CONN_LIST;
}

const char *
body_name(Copal__Request__BodyCase body)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
	    &copal__request__descriptor, (unsigned)body);
	return f ? f->name : "this request";
}

// ---------------------------------------------------------------- table

static uint64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned int len = 32;
	if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1)
		memset(out, 0, 32); // matches no token's digest in practice
}

// A unix-like user name: letters, digits, _ . -, not starting with - or .
static bool
name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > USER_NAME_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

static int64_t
uid_of(const char *name)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return -1;
	return (int64_t)pw.pw_uid;
}

static void
recount(users *u)
{
	u->any_local = false;
	for (size_t i = 0; i < u->n; i++)
		if (u->v[i].uid >= 0)
			u->any_local = true;
}

static int
parse_line(char *line, struct user *e)
{
	char name[128], role[16], hex[80];
	long long uid;
	unsigned long long created;
	memset(e, 0, sizeof(*e));
	if (sscanf(line, "%127s %15s %lld %llu %79s", name, role, &uid,
	        &created, hex) != 5 || !name_ok(name) ||
	    (e->role = role_parse(role)) == ROLE_NONE || strlen(hex) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		unsigned x;
		if (sscanf(hex + 2 * i, "%2x", &x) != 1)
			return -1;
		e->hash[i] = (uint8_t)x;
	}
	memcpy(e->name, name, strlen(name) + 1); // name_ok: fits
	e->uid = uid < 0 ? -1 : uid;
	e->created_us = created;
	return 0;
}

int
users_open(const char *db, users **out, char *err, size_t errlen)
{
	users *u = calloc(1, sizeof(*u));
	char line[512];
	int lineno = 0, rv = 0;
	*out = NULL;
	if (u == NULL)
		return CPL_ENOMEM;
	pthread_rwlock_init(&u->lk, NULL);
	if (db != NULL)
		cpl_dbpath(db, CPL_DB_USERS, u->path, sizeof(u->path));
	u->owner_uid = getuid();
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(u->owner_uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(u->owner, sizeof(u->owner), "%s", pw.pw_name);
	else
		snprintf(u->owner, sizeof(u->owner), "uid%lu",
		    (unsigned long)u->owner_uid);
	FILE *fp = u->path[0] ? fopen(u->path, "re") : NULL;
	if (fp == NULL) {
		if (u->path[0] == '\0' || errno == ENOENT) {
			*out = u;
			return 0;
		}
		snprintf(err, errlen, "cannot read %s: %s", u->path,
		    strerror(errno));
		users_free(u);
		return CPL_EIO;
	}
	while (fgets(line, sizeof(line), fp)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		struct user e;
		if (parse_line(line, &e) != 0) {
			snprintf(err, errlen, "%s:%d: not NAME ROLE UID "
			    "CREATED_US SHA256", u->path, lineno);
			rv = CPL_ECORRUPT;
			break;
		}
		if (u->n % 16 == 0) {
			struct user *v = realloc(u->v, (u->n + 16) * sizeof(*v));
			if (v == NULL) {
				rv = CPL_ENOMEM;
				break;
			}
			u->v = v;
		}
		u->v[u->n++] = e;
	}
	fclose(fp);
	if (rv) {
		users_free(u);
		return rv;
	}
	recount(u);
	*out = u;
	return 0;
}

void
users_free(users *u)
{
	if (u == NULL)
		return;
	if (u->v)
		explicit_bzero(u->v, u->n * sizeof(*u->v));
	free(u->v);
	pthread_rwlock_destroy(&u->lk);
	free(u);
}

const char *
users_owner(const users *u)
{
	return u->owner;
}

bool
users_by_uid(users *u, uint64_t uid, char *name, int *role)
{
	bool found = false;
	if (uid == (uint64_t)u->owner_uid) {
		memcpy(name, u->owner, sizeof(u->owner));
		*role = ROLE_ADMIN;
		return true;
	}
	pthread_rwlock_rdlock(&u->lk);
	for (size_t i = 0; i < u->n && !found; i++)
		if (u->v[i].uid >= 0 && (uint64_t)u->v[i].uid == uid) {
			memcpy(name, u->v[i].name, sizeof(u->v[i].name));
			*role = u->v[i].role;
			found = true;
		}
	pthread_rwlock_unlock(&u->lk);
	return found;
}

bool
users_by_token(users *u, const uint8_t *tok, size_t len, char *name,
    int *role)
{
	uint8_t h[32];
	bool found = false;
	if (len == 0)
		return false;
	sha256(tok, len, h);
	pthread_rwlock_rdlock(&u->lk);
	for (size_t i = 0; i < u->n && !found; i++) {
		unsigned char diff = 0;
		for (int k = 0; k < 32; k++)
			diff |= h[k] ^ u->v[i].hash[k];
		if (diff == 0) {
			memcpy(name, u->v[i].name, sizeof(u->v[i].name));
			*role = u->v[i].role;
			found = true;
		}
	}
	pthread_rwlock_unlock(&u->lk);
	return found;
}

bool
users_any_local(users *u)
{
	pthread_rwlock_rdlock(&u->lk);
	bool any = u->any_local;
	pthread_rwlock_unlock(&u->lk);
	return any;
}

// Writes the table of v (n users) to the file, whole: beside it, then
// renamed. Called with the write lock held.
static int
save(users *u, const struct user *v, size_t n, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8];
	if (u->path[0] == '\0') {
		snprintf(err, errlen, "the broker has no database directory");
		return CPL_EINVAL;
	}
	snprintf(tmp, sizeof(tmp), "%s.new", u->path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (fp == NULL) {
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	fprintf(fp, "# copal users of this database (written by the broker: "
	    "change it with copal server --add-user/--drop-user)\n"
	    "# NAME ROLE UID CREATED_US SHA256-OF-TOKEN\n");
	for (size_t i = 0; i < n; i++) {
		fprintf(fp, "%s %s %" PRId64 " %" PRIu64 " ", v[i].name,
		    role_name(v[i].role), v[i].uid, v[i].created_us);
		for (int k = 0; k < 32; k++)
			fprintf(fp, "%02x", v[i].hash[k]);
		fputc('\n', fp);
	}
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		fclose(fp);
		unlink(tmp);
		goto fail;
	}
	if (fclose(fp) != 0 || rename(tmp, u->path) != 0) {
		unlink(tmp);
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot write %s: %s", u->path, strerror(errno));
	return CPL_EIO;
}

// ---------------------------------------------------------------- requests

static char *
hexstr(arena *a, const uint8_t *p, size_t n)
{
	char *s = arena_alloc(a, 2 * n + 1);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", p[i]);
	return s;
}

static Copal__User *
user_wire(arena *a, const struct user *e)
{
	Copal__User *w = arena_alloc(a, sizeof(*w));
	if (w == NULL)
		return NULL;
	*w = (Copal__User)COPAL__USER__INIT;
	if ((w->name = arena_strdup(a, e->name)) == NULL)
		return NULL;
	w->role = (char *)role_name(e->role);
	w->uid = e->uid;
	w->created_us = e->created_us;
	return w;
}

static int
user_add(users_env *env, const Copal__UserAddRequest *rq, Copal__Reply *rep,
    arena *a, char *err, size_t errlen)
{
	users *u = env->u;
	struct user e;
	uint8_t tok[32];
	char *cert = NULL, *key = NULL, cpath[PATH_MAX], terr[PATH_MAX + 64];
	int rv;
	memset(&e, 0, sizeof(e));
	if (!name_ok(rq->name)) {
		snprintf(err, errlen, "bad user name \"%s\": letters, digits, "
		    "_ . - (at most %d), not starting with - or .", rq->name,
		    USER_NAME_MAX);
		return CPL_EINVAL;
	}
	e.role = rq->role[0] ? role_parse(rq->role) : ROLE_READ;
	if (e.role == ROLE_NONE) {
		snprintf(err, errlen, "unknown role \"%s\": say read, write or "
		    "admin", rq->role);
		return CPL_EINVAL;
	}
	if (strcmp(rq->name, u->owner) == 0) {
		snprintf(err, errlen, "%s is the database's owner (always "
		    "admin): nothing to add", rq->name);
		return CPL_EEXISTS;
	}
	snprintf(e.name, sizeof(e.name), "%s", rq->name);
	e.uid = uid_of(rq->name);
	if (e.uid == (int64_t)u->owner_uid) {
		snprintf(err, errlen, "%s has the owner's uid %" PRId64,
		    rq->name, e.uid);
		return CPL_EEXISTS;
	}
	e.created_us = now_us();
	if (getrandom(tok, sizeof(tok), 0) != (ssize_t)sizeof(tok)) {
		snprintf(err, errlen, "no random bytes for a token: %s",
		    strerror(errno));
		return CPL_EINTERNAL;
	}
	char *token = hexstr(a, tok, sizeof(tok));
	if (token == NULL)
		return CPL_ENOMEM;
	sha256((const uint8_t *)token, strlen(token), e.hash);
	explicit_bzero(tok, sizeof(tok));
	// the TLS part of the credential, when the database has a key
	cpl_dbpath(env->db, CPL_DB_TLS_CERT, cpath, sizeof(cpath));
	bool tls = access(cpath, F_OK) == 0;
	if (tls && (rv = cpl_tls_user_cert(env->db, e.name, &cert, &key, terr,
	                sizeof(terr))) != 0) {
		snprintf(err, errlen, "%s", terr);
		return rv;
	}

	pthread_rwlock_wrlock(&u->lk);
	rv = 0;
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->v[i].name, e.name) == 0) {
			snprintf(err, errlen, "user %s is already there, with "
			    "role %s (drop it first to change it)", e.name,
			    role_name(u->v[i].role));
			rv = CPL_EEXISTS;
			break;
		}
	if (rv == 0 && u->n >= MAX_USERS) {
		snprintf(err, errlen, "%d users already", MAX_USERS);
		rv = CPL_ETOOBIG;
	}
	struct user *v = NULL;
	if (rv == 0 && (v = malloc((u->n + 1) * sizeof(*v))) == NULL)
		rv = CPL_ENOMEM;
	if (rv == 0) {
		if (u->n)
			memcpy(v, u->v, u->n * sizeof(*v));
		v[u->n] = e;
		if ((rv = save(u, v, u->n + 1, err, errlen)) == 0) {
			free(u->v);
			u->v = v;
			u->n++;
			recount(u);
			v = NULL;
		}
	}
	free(v);
	pthread_rwlock_unlock(&u->lk);

	Copal__UserAddReply *r = arena_alloc(a, sizeof(*r));
	if (rv == 0 && r == NULL)
		rv = CPL_ENOMEM;
	if (rv == 0) {
		*r = (Copal__UserAddReply)COPAL__USER_ADD_REPLY__INIT;
		r->user = user_wire(a, &e);
		r->token = token;
		r->cert_pem = cert ? arena_strdup(a, cert) : "";
		r->key_pem = key ? arena_strdup(a, key) : "";
		r->ca_pem = "";
		FILE *fp = tls ? fopen(cpath, "re") : NULL;
		if (fp) {
			char buf[8192];
			size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
			buf[n] = '\0';
			fclose(fp);
			r->ca_pem = arena_strdup(a, buf);
		}
		if (r->user == NULL || r->cert_pem == NULL ||
		    r->key_pem == NULL || r->ca_pem == NULL)
			rv = CPL_ENOMEM;
	}
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	free(cert);
	if (rv)
		return rv;
	LOG(LOG_NOTICE, "users", "added user %s (role %s, uid %" PRId64 ")",
	    e.name, role_name(e.role), e.uid);
	rep->body_case = COPAL__REPLY__BODY_USER_ADD;
	rep->user_add = r;
	if (env->changed)
		env->changed(env->arg);
	return 0;
}

static int
user_drop(users_env *env, const Copal__UserDropRequest *rq,
    Copal__Reply *rep, arena *a, char *err, size_t errlen)
{
	users *u = env->u;
	int rv = CPL_ENOTFOUND;
	if (strcmp(rq->name, u->owner) == 0) {
		snprintf(err, errlen, "%s is the database's owner: it cannot be "
		    "dropped", rq->name);
		return CPL_EINVAL;
	}
	pthread_rwlock_wrlock(&u->lk);
	for (size_t i = 0; i < u->n; i++) {
		if (strcmp(u->v[i].name, rq->name) != 0)
			continue;
		struct user *v = malloc((u->n ? u->n : 1) * sizeof(*v));
		if (v == NULL) {
			rv = CPL_ENOMEM;
			break;
		}
		memcpy(v, u->v, i * sizeof(*v));
		memcpy(v + i, u->v + i + 1, (u->n - i - 1) * sizeof(*v));
		if ((rv = save(u, v, u->n - 1, err, errlen)) != 0) {
			free(v);
			break;
		}
		explicit_bzero(u->v, u->n * sizeof(*u->v));
		free(u->v);
		u->v = v;
		u->n--;
		recount(u);
		break;
	}
	pthread_rwlock_unlock(&u->lk);
	if (rv == CPL_ENOTFOUND)
		snprintf(err, errlen, "no user %s (copal server --list-users "
		    "lists them)", rq->name);
	if (rv)
		return rv;
	// its token no longer matches; its open connections go now
	int closed = env->ps ? peers_close_user(env->ps, rq->name) : 0;
	LOG(LOG_NOTICE, "users", "dropped user %s: closed %d connection%s",
	    rq->name, closed, closed == 1 ? "" : "s");
	Copal__UserDropReply *r = arena_alloc(a, sizeof(*r));
	if (r == NULL)
		return CPL_ENOMEM;
	*r = (Copal__UserDropReply)COPAL__USER_DROP_REPLY__INIT;
	r->closed = (uint32_t)closed;
	rep->body_case = COPAL__REPLY__BODY_USER_DROP;
	rep->user_drop = r;
	if (env->changed)
		env->changed(env->arg);
	return 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct user *)a)->name,
	    ((const struct user *)b)->name);
}

static int
user_list(users_env *env, Copal__Reply *rep, arena *a)
{
	users *u = env->u;
	int rv = 0;
	Copal__UserListReply *r = arena_alloc(a, sizeof(*r));
	if (r == NULL)
		return CPL_ENOMEM;
	*r = (Copal__UserListReply)COPAL__USER_LIST_REPLY__INIT;
	pthread_rwlock_rdlock(&u->lk);
	struct user *v = arena_alloc(a, (u->n + 1) * sizeof(*v));
	r->users = arena_alloc(a, (u->n + 1) * sizeof(*r->users));
	if (v == NULL || r->users == NULL) {
		rv = CPL_ENOMEM;
	} else {
		if (u->n)
			memcpy(v, u->v, u->n * sizeof(*v));
		qsort(v, u->n, sizeof(*v), by_name);
		struct user own;
		memset(&own, 0, sizeof(own));
		memcpy(own.name, u->owner, sizeof(own.name));
		own.role = ROLE_ADMIN;
		own.uid = (int64_t)u->owner_uid;
		if ((r->users[0] = user_wire(a, &own)) == NULL)
			rv = CPL_ENOMEM;
		else
			r->users[0]->owner = true;
		for (size_t i = 0; rv == 0 && i < u->n; i++)
			if ((r->users[i + 1] = user_wire(a, &v[i])) == NULL)
				rv = CPL_ENOMEM;
		r->n_users = u->n + 1;
	}
	pthread_rwlock_unlock(&u->lk);
	if (rv)
		return rv;
	rep->body_case = COPAL__REPLY__BODY_USER_LIST;
	rep->user_list = r;
	return 0;
}

static int
conn_list(users_env *env, Copal__Reply *rep, arena *a)
{
	Copal__ConnListReply *r = arena_alloc(a, sizeof(*r));
	if (r == NULL)
		return CPL_ENOMEM;
	*r = (Copal__ConnListReply)COPAL__CONN_LIST_REPLY__INIT;
	size_t n = 0, cap = 0;
	peer_info *v = NULL;
	// the count may grow between the two looks: ask until it fits
	while (env->ps && (n = peers_list(env->ps, v, cap)) > cap) {
		cap = n + 16;
		if ((v = arena_alloc(a, cap * sizeof(*v))) == NULL)
			return CPL_ENOMEM;
	}
	if (n && (r->conns = arena_alloc(a, n * sizeof(*r->conns))) == NULL)
		return CPL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		Copal__Connection *c = arena_alloc(a, sizeof(*c));
		char addr[64];
		if (c == NULL)
			return CPL_ENOMEM;
		*c = (Copal__Connection)COPAL__CONNECTION__INIT;
		nng_pipe p = NNG_PIPE_INITIALIZER;
		p.id = v[i].id;
		if (v[i].ipc)
			snprintf(addr, sizeof(addr), "ipc");
		else
			peer_addr(p, addr, sizeof(addr));
		c->user = arena_strdup(a, v[i].user);
		c->role = (char *)(v[i].user[0] ? role_name(v[i].role) : "");
		c->uid = v[i].uid;
		c->address = arena_strdup(a, addr);
		c->since_us = v[i].since_us;
		c->requests = v[i].requests;
		c->credential = (char *)(v[i].cred ? v[i].cred : "");
		if (c->user == NULL || c->address == NULL)
			return CPL_ENOMEM;
		r->conns[r->n_conns++] = c;
	}
	rep->body_case = COPAL__REPLY__BODY_CONN_LIST;
	rep->conn_list = r;
	return 0;
}

int
users_handle(users_env *env, const Copal__Request *req, const char *who,
    Copal__Reply *rep, arena *a, char *err, size_t errlen)
{
	int rv;
	switch (req->body_case) {
	case COPAL__REQUEST__BODY_USER_ADD:
		rv = user_add(env, req->user_add, rep, a, err, errlen);
		break;
	case COPAL__REQUEST__BODY_USER_DROP:
		rv = user_drop(env, req->user_drop, rep, a, err, errlen);
		break;
	case COPAL__REQUEST__BODY_USER_LIST:
		return user_list(env, rep, a);
	case COPAL__REQUEST__BODY_CONN_LIST:
		return conn_list(env, rep, a);
	default:
		return CPL_EPROTO;
	}
	if (rv)
		LOG(LOG_WARN, "users", "%s by %s refused: %s",
		    body_name(req->body_case), who, err[0] ? err :
		    cpl_strerror(rv));
	return rv;
}
