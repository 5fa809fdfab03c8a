// Who caused an event (issue 20): a write transaction given a user with
// cpl_txn_set_user records it in every event it writes (create, kill,
// note, and the cascade of a kill to waiting children); one without
// records none, and reads back "" as events written before users were
// recorded do (their records are the same bytes: the user's length sits
// in what was zeroed padding). A name is cut to CPL_EVENT_USER_MAX bytes
// at a character boundary. The store's check passes (teardown).
#include "copal/testing/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct act {
	const char *user;
	int what; // 0 create, 1 kill, 2 note
	uint64_t id, parent;
};

static int
act_cb(cpl_txn *txn, void *arg)
{
	struct act *a = arg;
	cpl_txn_set_user(txn, a->user);
	if (a->what == 1)
		return cpl_task_kill(txn, a->id, "killed", NULL);
	if (a->what == 2)
		return cpl_history_note(txn, a->id, "looked");
	tu_spec sp;
	tu_spec_init(&sp, "t", "w", "app");
	if (a->parent)
		tu_spec_parent(&sp, a->parent);
	return cpl_task_create(txn, &sp.spec, &a->id, NULL);
}

static int
act(tu_env *e, struct act *a)
{
	return cpl_store_write(e->s, act_cb, a);
}

struct users {
	char v[8][128];
	int n;
};

static int
user_cb(const cpl_event *ev, void *arg)
{
	struct users *u = arg;
	if (u->n < 8)
		snprintf(u->v[u->n++], sizeof(u->v[0]), "%s", ev->user);
	return 0;
}

struct hist_arg {
	uint64_t id;
	struct users *u;
};

static int
hist_cb(cpl_txn *txn, void *arg)
{
	struct hist_arg *h = arg;
	h->u->n = 0;
	return cpl_history_task(txn, h->id, user_cb, h->u);
}

static struct users
users_of(tu_env *e, uint64_t id)
{
	struct users u;
	struct hist_arg h = { id, &u };
	memset(&u, 0, sizeof(u));
	TU_OK(cpl_store_read(e->s, hist_cb, &h));
	return u;
}

static void
test_history_user(void **state)
{
	tu_env *e = *state;
	struct act none = { NULL, 0, 0, 0 }, bob = { "bob", 0, 0, 0 };
	TU_OK(act(e, &none));
	TU_OK(act(e, &bob));
	struct act child = { "", 0, 0, bob.id };
	TU_OK(act(e, &child));
	struct users u = users_of(e, none.id);
	assert_int_equal(u.n, 1);
	assert_string_equal(u.v[0], "");
	u = users_of(e, bob.id);
	assert_int_equal(u.n, 1);
	assert_string_equal(u.v[0], "bob");
	// a kill by carol: her event, and the waiting child's cascade
	struct act kill = { "carol", 1, bob.id, 0 };
	TU_OK(act(e, &kill));
	u = users_of(e, bob.id);
	assert_int_equal(u.n, 2);
	assert_string_equal(u.v[1], "carol");
	u = users_of(e, child.id);
	assert_int_equal(u.n, 2);
	assert_string_equal(u.v[0], "");
	assert_string_equal(u.v[1], "carol");
	// a long name is cut whole: 63 bytes of 'x' then a 2-byte character
	char longname[80];
	memset(longname, 'x', 63);
	strcpy(longname + 63, "\xc3\xa9yyyy");
	struct act note = { longname, 2, none.id, 0 };
	TU_OK(act(e, &note));
	u = users_of(e, none.id);
	assert_int_equal(u.n, 2);
	assert_int_equal(strlen(u.v[1]), 63);
	// the global log reads the same users
	TU_CHECK(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_history_user, tu_setup,
		    tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
