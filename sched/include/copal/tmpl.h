// Job-script templates: the default template of each batch scheduler
// (templates/*.tmpl, built into the copal binary) and the renderer that
// fills in their {{ name }} placeholders.
//
// A template is text in which each `{{ name }}` (blanks inside the braces
// optional; name of letters, digits and '_') is replaced by the value of
// the variable of that name. There is no escaping, no condition and no
// loop: values are put in as they are, so whoever fills them makes sure
// they are safe where they go (copal submit-launch passes only values
// without shell metacharacters, and the templates do not quote them).
#ifndef COPAL_TMPL_H
#define COPAL_TMPL_H

#include <stddef.h>

// One variable: name without braces; value NULL is taken as "".
typedef struct tmpl_var {
	const char *name;
	const char *value;
} tmpl_var;

// Renders text with vars (the first of a name counts). Returns a
// malloc'd NUL-terminated string the caller frees, or NULL with a message
// "LINE: what is wrong" in err (if not NULL): for an unknown name, an empty
// name, a character that cannot be in a name, a `{{` not closed by `}}` on
// its line, or no memory ("out of memory"). A `}}` without `{{` is text.
char *tmpl_render(const char *text, const tmpl_var *vars, size_t nvars,
    char *err, size_t errlen);

// The default template of a scheduler ("slurm", "pbs", "cobalt",
// "local"), or NULL. Static text.
const char *tmpl_default(const char *scheduler);

// NULL-terminated list of the scheduler names that have a default template.
extern const char *const tmpl_schedulers[];

// The default templates, in the order of tmpl_schedulers. Defined in
// tmpl_data.c, which the build generates from templates/*.tmpl
// (sched/embed_templates.cmake); use tmpl_default().
extern const char *const tmpl_texts[];

#endif // COPAL_TMPL_H
