// copal web: the timeline of runs per node (web.h, README: /api/timeline).
//
// The runs of a window are paired from the event log (RUNNING to the
// event that ends the run, by task), grouped by the node the launcher
// reported. A window holds any number of events: one of more than
// WEB_TL_EVENTS keeps its end (the start moves forward by bisection on
// time, each step two exports of one event), and at most WEB_TL_SPANS runs
// are answered.
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "web.h"

// The seq of the first event at or after t (UINT64_MAX: none); one
// ExportRequest of one event: the broker seeks the time in its log.
static int
seq_at(web *w, uint64_t t, uint64_t *seq)
{
	Copal__ExportRequest er = COPAL__EXPORT_REQUEST__INIT;
	Copal__Reply *rep;
	er.since_us = t;
	er.limit = 1;
	if (cpl_call_export(w->c, &er, &rep) != 0)
		return -1;
	*seq = rep->export->n_events ? rep->export->events[0]->seq :
	                               UINT64_MAX;
	cpl_reply_free(rep);
	return 0;
}

// Whether [t, until) holds more than WEB_TL_EVENTS events: two requests
// of one event each (the broker seeks a time, or a seq, in its log).
static int
tl_over(web *w, uint64_t t, uint64_t until, bool *over)
{
	Copal__ExportRequest er = COPAL__EXPORT_REQUEST__INIT;
	Copal__Reply *rep;
	uint64_t s;
	*over = false;
	if (seq_at(w, t, &s) != 0)
		return -1;
	if (s == UINT64_MAX)
		return 0;
	er.after_seq = s + WEB_TL_EVENTS - 1;
	er.until_us = until;
	er.limit = 1;
	if (cpl_call_export(w->c, &er, &rep) != 0)
		return -1;
	*over = rep->export->n_events > 0;
	cpl_reply_free(rep);
	return 0;
}

// A window of more than WEB_TL_EVENTS events keeps its end: *since moves
// forward (bisection on time, to a millisecond) until at most that many
// are left. *cut tells whether it moved.
static int
tl_fit(web *w, uint64_t *since, uint64_t until, bool *cut)
{
	uint64_t lo = *since, hi = until;
	bool over;
	*cut = false;
	if (tl_over(w, *since, until, &over) != 0)
		return -1;
	if (!over)
		return 0;
	while (hi - lo > 1000) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (tl_over(w, mid, until, &over) != 0)
			return -1;
		if (over)
			lo = mid;
		else
			hi = mid;
	}
	*since = hi;
	*cut = true;
	return 0;
}

struct tl_open {
	uint64_t start_us;
	uint32_t node, name;
	char uuid[37];
};

void
web_timeline(web *w, const web_params *p, web_answer *a)
{
	uint64_t now, since, until;
	if (ONLY("since", "until"))
		return;
	if (ev_broker_now(w->c, &now) != 0) {
		web_broker_fail(w, a);
		return;
	}
	if (web_when(w, p, a, "since", now, now - 600ull * 1000000, &since) ||
	    web_when(w, p, a, "until", now, now, &until))
		return;
	if (until <= since) {
		web_fail(a, 400, "until is not after since");
		return;
	}
	bool cut;
	uint64_t asked = since;
	if (tl_fit(w, &since, until, &cut) != 0) {
		web_broker_fail(w, a);
		return;
	}
	u64map open;
	strset nodes, names;
	u64map_init(&open, sizeof(struct tl_open));
	strset_init(&nodes);
	strset_init(&names);
	json_t *spans = json_array();
	uint64_t after = 0, read = 0;
	bool truncated = false, failed = false;
	while (!truncated) {
		Copal__ExportRequest er = COPAL__EXPORT_REQUEST__INIT;
		Copal__Reply *rep;
		er.after_seq = after;
		er.since_us = after ? 0 : since;
		er.until_us = until;
		er.limit = 50000;
		if (cpl_call_export(w->c, &er, &rep) != 0) {
			failed = true;
			break;
		}
		const Copal__ExportReply *x = rep->export;
		for (size_t i = 0; i < x->n_events && !truncated; i++) {
			const Copal__Event *e = x->events[i];
			if (e->to_state == COPAL__TASK_STATE__STATE_RUNNING) {
				struct tl_open *o = u64map_put(&open,
				    e->task_id, NULL);
				o->start_us = e->time_us;
				o->node = strset_add(&nodes, e->node[0] ?
				    e->node : "?", NULL);
				o->name = strset_add(&names, e->name, NULL);
				snprintf(o->uuid, sizeof(o->uuid), "%s",
				    e->uuid);
			} else if (e->from_state ==
			    COPAL__TASK_STATE__STATE_RUNNING) {
				struct tl_open *o = u64map_get(&open,
				    e->task_id);
				if (o == NULL)
					continue; // began before since
				json_array_append_new(spans, json_pack(
				    "[i, I, I, s, s, s]", (int)o->node,
				    (json_int_t)(o->start_us / 1000),
				    (json_int_t)(e->time_us / 1000),
				    cpl_state_name((int)e->to_state), o->uuid,
				    names.strs[o->name]));
				u64map_del(&open, e->task_id);
				truncated = json_array_size(spans) >=
				    WEB_TL_SPANS;
			}
		}
		read += x->n_events;
		bool more = x->more && x->last_seq > after;
		after = x->last_seq;
		cpl_reply_free(rep);
		if (!more)
			break;
		if (read >= WEB_TL_EVENTS)
			truncated = true;
	}
	uint64_t k;
	void *v;
	uint64_t end = until < now ? until : now;
	for (size_t i = 0; !failed && u64map_next(&open, &i, &k, &v);) {
		struct tl_open *o = v;
		if (json_array_size(spans) >= WEB_TL_SPANS) {
			truncated = true;
			break;
		}
		json_array_append_new(spans, json_pack("[i, I, I, s, s, s]",
		    (int)o->node, (json_int_t)(o->start_us / 1000),
		    (json_int_t)(end / 1000), "running", o->uuid,
		    names.strs[o->name]));
	}
	json_t *nl = json_array();
	for (size_t i = 0; i < nodes.n; i++)
		json_array_append_new(nl, json_string(nodes.strs[i]));
	u64map_free(&open);
	strset_free(&nodes);
	strset_free(&names);
	if (failed) {
		json_decref(spans);
		json_decref(nl); {
		web_broker_fail(w, a);
		return;
	}
	}
	// cut: the window's start moved to keep WEB_TL_EVENTS events
	a->json = json_pack("{s:I, s:I, s:I, s:o, s:o, s:b, s:b}",
	    "asked_since_ms", (json_int_t)(asked / 1000),
	    "since_ms", (json_int_t)(since / 1000),
	    "until_ms", (json_int_t)(end / 1000), "nodes", nl,
	    "spans", spans, "truncated", truncated, "cut", cut);
}
