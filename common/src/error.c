// Error names and messages, made from the one list in store.h.
#include <stddef.h>

#include "copal/common.h"

static const char *const msgs[] = {
#define CPL_X_MSG(name, msg) msg,
	CPL_ERRNO_MAP(CPL_X_MSG)
#undef CPL_X_MSG
};

static const char *const names[] = {
#define CPL_X_NAME(name, msg) #name,
	CPL_ERRNO_MAP(CPL_X_NAME)
#undef CPL_X_NAME
};

const char *
cpl_strerror(int err)
{
	if (err < 0 || err >= CPL_NERRORS)
		return "unknown error";
	return msgs[err];
}

const char *
cpl_errname(int err)
{
	if (err < 0 || err >= CPL_NERRORS)
		return "UNKNOWN";
	return names[err];
}
