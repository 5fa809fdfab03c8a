// Who may use the database besides its owner (internal): the users table
// kept in <db>/users, their roles, the lookups the network side makes for
// every connection (by peer uid) and TCP request (by token), and the
// user-management requests (copal server --add-user ...).
#ifndef COPAL_BROKER_USERS_H
#define COPAL_BROKER_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "peers.h"

// Roles, each allowing what the one below allows.
enum { ROLE_NONE = 0, ROLE_READ = 1, ROLE_WRITE = 2, ROLE_ADMIN = 3 };

// The longest user name (a unix user name is at most 32 bytes).
#define USER_NAME_MAX 32

const char *role_name(int role);
// "read", "write", "admin" -> the role; ROLE_NONE for anything else.
int role_parse(const char *s);
// The role a request needs: read for what only reads, admin for the
// management of users and for archiving (copal db archive), write for
// everything else (a request this table does not know changes something
// until said otherwise).
int role_needed(Copal__Request__BodyCase body);
// Whether the users' part of the broker answers this request (users_handle),
// not the store's handlers.
bool users_body(Copal__Request__BodyCase body);
// The request's name for a refusal ("modify").
const char *body_name(Copal__Request__BodyCase body);

typedef struct users users;

// Loads <db>/users (none: no users). The owner is the unix user the broker
// runs as. Errors: CPL_ECORRUPT (a line that does not read; err says
// which), CPL_ENOMEM, CPL_EIO.
int users_open(const char *db, users **out, char *err, size_t errlen);
void users_free(users *u);
// The owner's name and uid.
const char *users_owner(const users *u);
// A listed user with this uid: its name (USER_NAME_MAX + 1 bytes) and
// role. The owner's uid is answered as the owner, admin.
bool users_by_uid(users *u, uint64_t uid, char *name, int *role);
// A listed user whose token this is (compared by its SHA-256).
bool users_by_token(users *u, const uint8_t *tok, size_t len, char *name,
    int *role);
// Whether some listed user has a uid (the local socket is then opened to
// other users; the peer-uid check is the wall).
bool users_any_local(users *u);

// What the user requests need of the broker.
typedef struct users_env {
	users *u;
	peers *ps;
	const char *db;
	// the table changed: the network side sets the socket's modes
	void (*changed)(void *arg);
	void *arg;
} users_env;

// Runs a user request (user_add, user_drop, user_list, conn_list) of
// `who`, filling rep from arena a. Returns 0 or an error with its reason
// in err.
int users_handle(users_env *e, const Copal__Request *req, const char *who,
    Copal__Reply *rep, arena *a, char *err, size_t errlen);

#endif
