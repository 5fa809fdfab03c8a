// Task tags, parameterized apps and launch parameters: the rules every
// part checks them by, and the rendering of an app's command template.
//
// A tag is "key=value": a non-empty key without '=', a value (may be
// empty), valid UTF-8 without control bytes, at most CPL_TAG_MAX bytes in
// all. An app's command may hold {{ name }} placeholders (spaces inside the
// braces optional) for its declared parameters; a task gives values by
// name. At launch each value becomes one shell word: single-quoted, so
// spaces, quotes, $() and globs arrive literally.
#ifndef COPAL_PARAMS_H
#define COPAL_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "copal.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CPL_TAG_MAX 255u          // bytes of one "key=value" tag
#define CPL_TAGS_MAX 64u          // tags of one task, of one filter
#define CPL_PARAM_NAME_MAX 64u    // bytes of a parameter's name
#define CPL_PARAMS_MAX 64u        // parameters of an app, values of a task
#define CPL_PARAM_VALUE_MAX 4096u // bytes of one value or default
#define CPL_LPARAM_MAX 1024u      // bytes of one launch parameter
#define CPL_LPARAMS_MAX 32u       // launch parameters of one task

// Whether tag is a well-formed "key=value" tag; if not, says why in err
// (may be NULL), e.g. "tag \"abc\" is not key=value". Errors: CPL_EINVAL.
int cpl_tag_check(const char *tag, char *err, size_t errlen);

// Whether name is a parameter name: [A-Za-z_][A-Za-z0-9_]*, at most
// CPL_PARAM_NAME_MAX bytes.
bool cpl_param_name_ok(const char *name);

// Checks an app's parameters against its executable: names well formed
// and distinct, every placeholder declared, the template well formed (no
// unclosed "{{"). Errors: CPL_EINVAL with the reason in err.
int cpl_app_params_check(const Copal__App *app, char *err, size_t errlen);

// Checks a task's parameter values against its app: every name declared,
// given once, every parameter without a default given. An app without
// parameters takes no values. Errors: CPL_EINVAL with a message naming the
// parameter in err.
int cpl_task_params_check(const Copal__App *app, const Copal__TaskSpec *sp,
    char *err, size_t errlen);

// Writes s as one shell word (single quotes; a quote inside as '\'') into
// out at *pos. Errors: CPL_ETOOBIG (out too small; out holds a prefix).
int cpl_shell_word(char *out, size_t outlen, size_t *pos, const char *s);

// Renders the app's command for a task into out: each {{ name }} becomes
// the task's value (or the default) as one shell word. A plain app
// (no parameters) is copied as it is. Errors: CPL_EINVAL (template or
// values break the rules above: check them first), CPL_ETOOBIG.
int cpl_cmd_render(const Copal__App *app, const Copal__TaskSpec *sp,
    char *out, size_t outlen);

#ifdef __cplusplus
}
#endif
#endif // COPAL_PARAMS_H
