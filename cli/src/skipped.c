// The stages a history event passed over (Event.skipped, issue 22), for
// copal ls --history: as a JSON array and as text.
#include <stdio.h>

#include <jansson.h>

#include "cli.h"

void
event_skipped_json(void *ev, const Copal__Event *e)
{
	if (ev == NULL || e->n_skipped == 0)
		return;
	json_t *sk = json_array();
	for (size_t s = 0; s < e->n_skipped; s++)
		json_array_append_new(sk,
		    json_string(cpl_state_name((int)e->skipped[s])));
	json_object_set_new(ev, "skipped", sk);
}

void
event_skipped_print(const Copal__Event *e)
{
	printf("(skipped");
	for (size_t s = 0; s < e->n_skipped; s++)
		printf("%s %s", s ? "," : "", cpl_state_name((int)e->skipped[s]));
	printf(")%s", e->message[0] ? " " : "");
}
