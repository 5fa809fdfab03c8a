// The rule book of a task spec (copal.proto TaskSpec and its Resources):
// one row per field with the names users type, the field's type, its
// bounds, whether `copal modify` may change it and its one line of help;
// and the check every part runs against it. The store's spec check, the
// broker's modify, the command line's options, the JSON lines of
// `copal job --from-file` and the help of `copal job` / `copal modify` all
// read this table, so a bound or a name is written here only.
//
// Spellings: `key` is the JSON key of a --from-file line and the FIELD of
// `copal modify` (both also take it with '-' for '_'); `alias` is another
// spelling both take; `opt` is the option of `copal job` (--opt); `proto` is
// the field's name in the schema, which `copal modify` takes as well.
#ifndef COPAL_SPEC_H
#define COPAL_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "copal.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

// Bounds other code depends on besides the check (the store packs some of
// these values into 16-bit record fields and keys names of at most
// CPL_SPEC_NAME_MAX bytes).
#define CPL_SPEC_NAME_MAX 255u      // bytes of name, workflow, application
#define CPL_SPEC_NODES_MAX 65535u   // num_nodes
#define CPL_SPEC_RETRIES_MAX 65535u // max_retries
#define CPL_SPEC_GPUS_MAX 65535u    // gpus_per_rank x ranks_per_node
#define CPL_SPEC_WORKDIR_MAX 1023u  // bytes of workdir
#define CPL_SPEC_BYTES_MAX (1u << 20) // the packed TaskSpec (1 MiB)

typedef enum cpl_spec_type {
	CPL_SPEC_STRING, // string
	CPL_SPEC_UINT,   // uint32
	CPL_SPEC_INT,    // int32
	CPL_SPEC_BOOL,   // bool
	CPL_SPEC_LIST,   // repeated string
	CPL_SPEC_IDS,    // repeated uint64: task ids (users give uuid prefixes)
	CPL_SPEC_ENV,    // repeated EnvVar: NAME=VALUE
	CPL_SPEC_JSON,   // string holding a JSON document
} cpl_spec_type;

typedef struct cpl_spec_field {
	const char *key;    // JSON key, `copal modify` FIELD, name in messages
	const char *alias;  // another spelling of key, or NULL
	const char *opt;    // `copal job --OPT`
	const char *proto;  // name in TaskSpec, or in Resources if resources
	bool resources;     // a field of TaskSpec.resources
	cpl_spec_type type;
	size_t off;         // offset of the member in its message
	size_t noff;        // repeated fields: offset of the count (n_...)
	// Bounds. Strings: at most max_len bytes; repeated fields: at most
	// max_len entries (0: no bound but the packed size). Numbers: in
	// [min, max] (every UINT and INT row sets max).
	uint32_t max_len;
	int64_t min, max;
	bool required;      // must not be empty
	bool zero_is_one;   // 0 is read as 1
	bool modify;        // `copal modify` may change it
	int64_t dflt;       // numbers, bools: the value a new task starts with
	const char *sep;    // lists typed as one string: the separators
	const char *metavar;
	const char *help;   // one line
} cpl_spec_field;

// Every field of TaskSpec and Resources but TaskSpec.resources itself, in
// the order of the command line's help.
#define CPL_SPEC_NFIELDS 33
extern const cpl_spec_field cpl_spec_fields[CPL_SPEC_NFIELDS];

// The field whose key is exactly name, or NULL.
const cpl_spec_field *cpl_spec_find(const char *name);

// Where f's value lives in sp: a pointer to the member (char ** for
// strings, uint32_t, int32_t, protobuf_c_boolean, or the array pointer of
// a repeated field). NULL for a Resources field when sp->resources is NULL.
void *cpl_spec_member(const cpl_spec_field *f, Copal__TaskSpec *sp);
// The entry count of a repeated field (NULL as above, or for a field that
// is not repeated).
size_t *cpl_spec_count(const cpl_spec_field *f, Copal__TaskSpec *sp);

// Sets a STRING, JSON, UINT, INT or BOOL field from text, as `copal modify
// ID FIELD VALUE` gives it: decimal numbers; true/yes/1 or false/no/0 for
// bools. A string field then points at value (not copied); a Resources
// field needs sp->resources. Errors: CPL_EINVAL (value does not parse, or
// the field is a list).
int cpl_spec_set(const cpl_spec_field *f, Copal__TaskSpec *sp,
    const char *value);

// Checks a spec against the table and the rules between fields (packing
// is for single-node tasks, GPUs per node, workdir inside data/) and its
// packed size. On failure writes a message naming the field and the limit
// into err (may be NULL), e.g. "num_nodes 65536 is above the limit 65535"
// or "name is 300 bytes, above the limit 255". Errors: CPL_EINVAL (a field
// breaks a rule), CPL_ETOOBIG (the packed spec is above
// CPL_SPEC_BYTES_MAX bytes).
int cpl_spec_check(const Copal__TaskSpec *spec, char *err, size_t errlen);
// The same without the packed size, for the store, which measures the
// size once where it packs the record. Errors: CPL_EINVAL.
int cpl_spec_check_fields(const Copal__TaskSpec *spec, char *err,
    size_t errlen);

// Reads a packed TaskSpec's name and workflow (fields 1 and 2) without
// unpacking the rest: the export and a task's history name every event's
// task, and a whole unpack (its allocations, every field) was the largest
// cost of an export. name and wf get at most CPL_SPEC_NAME_MAX bytes and a
// NUL (buffers of CPL_SPEC_NAME_MAX + 1); a field absent is "". Reads
// every top-level field (any order), so a field 1 or 2 anywhere is found
// (the last one wins, as in an unpack). Errors: CPL_EINVAL (an argument
// NULL), CPL_ECORRUPT (not the protobuf wire format: a cut varint or
// field, an unknown wire type, field number 0, name or workflow longer
// than CPL_SPEC_NAME_MAX).
int cpl_spec_packed_names(const void *buf, size_t len,
    char name[CPL_SPEC_NAME_MAX + 1], char wf[CPL_SPEC_NAME_MAX + 1]);

#ifdef __cplusplus
}
#endif
#endif // COPAL_SPEC_H
