// Held claims (internal): a request whose answer would be empty may wait,
// up to its own deadline, for something to change. The park keeps such
// requests, bounded in number (each holds one of the network's contexts),
// gives them all back to be run again when told that something changed,
// and answers each whose deadline passes as it stands. It knows nothing
// of requests: an item carries its own two callbacks.
#ifndef COPAL_BROKER_PARK_H
#define COPAL_BROKER_PARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct park park;
typedef struct pitem pitem;

struct pitem {
	uint64_t until_us;            // cpl_mono_us() deadline
	void (*again)(pitem *it);     // something changed: run it again
	void (*expire)(pitem *it);    // its deadline passed, or the park stops
	void *arg;                    // the owner's
	uint64_t key;                 // the owner's grouping (a lease)
	pitem *next;                  // the park's list
};

// Starts the park's thread; at most max items are held at once.
// Errors: CPL_ENOMEM.
int park_start(size_t max, park **out);
// Takes one of the places (any thread): false when all are taken or the
// park stops; the caller then answers at once. A place taken is given
// back by park_add or park_unreserve.
bool park_reserve(park *p);
void park_unreserve(park *p);
// Holds it (on a place reserved before) until park_wake or its deadline;
// expires it at once (on the caller's thread) if the park stops or its
// key was dropped.
void park_add(park *p, pitem *it);
// Something changed: every item held is handed to its again callback (on
// the park's thread, outside its lock).
void park_wake(park *p);
// Expires every item held and refuses places from now on; joins the
// thread. park_free frees it.
void park_stop(park *p);
void park_free(park *p);
// The owner of key stops: its items held are expired now (on the
// caller's thread) and, from now on, park_reserve_key refuses it.
void park_drop_key(park *p, uint64_t key);
// park_reserve for an item of key.
bool park_reserve_key(park *p, uint64_t key);
// Whether park_drop_key(key) was called (of the latest 64 keys).
bool park_dropped(park *p, uint64_t key);
// Items held now.
size_t park_count(park *p);

#endif
