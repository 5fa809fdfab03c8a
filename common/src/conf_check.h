// Value checks of the settings reader (conf.c's tables name them); not a
// public API.
#ifndef COPAL_CONF_CHECK_H
#define COPAL_CONF_CHECK_H

#include <stdbool.h>

// Internal to copal: not exported from the shared client library.
#define CONF_INTERNAL __attribute__((visibility("hidden")))

CONF_INTERNAL bool conf_is_job_mode(const char *v);
CONF_INTERNAL bool conf_name_char(char ch);
CONF_INTERNAL bool conf_is_name(const char *v);
CONF_INTERNAL bool conf_is_name_or_empty(const char *v);
CONF_INTERNAL bool conf_is_bool(const char *v);
CONF_INTERNAL bool conf_is_uuid_kind(const char *v);
CONF_INTERNAL bool conf_is_claim_order(const char *v);
CONF_INTERNAL bool conf_is_code_list(const char *v);
CONF_INTERNAL bool conf_is_any(const char *v);
CONF_INTERNAL bool conf_is_tcp(const char *v);
CONF_INTERNAL bool conf_is_host_or_empty(const char *v);
CONF_INTERNAL bool conf_is_refuse_warn(const char *v);

#endif // COPAL_CONF_CHECK_H
