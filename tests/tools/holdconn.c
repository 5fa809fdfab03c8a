// holdconn: one client connection held open across requests, for the
// users test (cli/test/users_test.sh): a user's session that its admin
// drops while it is open.
//
//   holdconn    (the broker from $COPAL_DB, or $COPAL_BROKER_URL with
//                $COPAL_CREDENTIAL / $COPAL_TOKEN)
//
// Reads commands from stdin, one a line, and answers each with one line
// on stdout: "count" counts the tasks ("ok N" or "err CODE MESSAGE"),
// "quit" ends. Every request goes on the same client (one connection),
// once, with a 3 s timeout.
#include <stdio.h>
#include <string.h>

#include "copal/client.h"

int
main(void)
{
	cpl_client_opts o;
	cpl_client *c;
	char line[64];
	memset(&o, 0, sizeof(o));
	o.timeout_ms = 3000;
	o.attempts = 1;
	int rv = cpl_client_open(&o, &c);
	if (rv) {
		printf("err %d cannot open a client: %s\n", rv, cpl_strerror(rv));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "quit") == 0)
			break;
		if (strcmp(line, "count") != 0) {
			printf("err 0 unknown command %s\n", line);
			continue;
		}
		Copal__Reply *rep = NULL;
		rv = cpl_call_count(c, NULL, &rep);
		if (rv == 0)
			printf("ok %llu\n", (unsigned long long)rep->count->total);
		else
			printf("err %d %s\n", rv, cpl_client_errmsg(c));
		cpl_reply_free(rep);
	}
	cpl_client_close(c);
	return 0;
}
