// What the broker harness (broker_fuzz.c), its seeded store
// (broker_seed.c) and the seed maker (mkseeds.c) agree on.
#ifndef COPAL_BROKER_FUZZ_H
#define COPAL_BROKER_FUZZ_H

#include <stdint.h>

#include "copal/store.h"

// The database's token: a request that carries it passes wire_token_ok.
#define FZ_TOKEN "0123456789abcdef0123456789abcdef"
#define FZ_TOKEN_LEN 32

// The client of the stored reply, its request id and its body's digest.
#define FZ_CLIENT { 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, \
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11 }
#define FZ_STORED_ID 7
#define FZ_STORED_DIGEST { 0 }
extern const uint8_t fz_client[CPL_CLIENT_ID_LEN];

// What the seeded store holds (ids from 1 in a fresh store):
//   apps hello, sim, unused
//   tasks 1 a (wf1, JOB_FINISHED), 2 b (wf1, READY, child of 1),
//         3 c (wf1, AWAITING_PARENTS, child of 2), 4 d (wf2, RUNNING
//         under lease 1, 2 nodes), 5 e (wf2, READY), 6 f (wf2, killed
//         while held: a notice for lease 1), 7 g (wf2, PARENT_KILLED),
//         8 h (wf3, READY, a note), 9 "ünï" (wf3, READY)
//   leases 1 (holds 4), 2 (none)
//   batch jobs 1 (slurm, QUEUED), 2 (local, SUBMITTING)
void fz_seed(cpl_store *st);

#endif
