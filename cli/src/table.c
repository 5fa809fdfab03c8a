// Output of rows: aligned tables in Balsam's style, JSON (one array or one
// object per line) and CSV with RFC 4180 quoting.
//
//                               job_id |   name | workflow | application | state
// -------------------------------------------------------------------------------
// 0796bd50-adbc-424b-bd26-476f2c00275b | test1  | test     | say-hello   | READY
//
// Column widths come from the data. A table keeps its first TABLE_BUFFER
// rows to measure them, then streams the rest with the same widths, so a
// listing of a million tasks does not sit in memory.
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

const cli_opt format_opts[] = {
	{ "format", KEY_FORMAT, OPT_ARG, "FMT",
	    "output format: table (default), json, jsonl or csv" },
	{ NULL, 0, 0, NULL, NULL },
};

int
out_fmt_parse(const char *s, out_fmt *out)
{
	static const struct {
		const char *name;
		out_fmt fmt;
	} fmts[] = { { "table", FMT_TABLE }, { "json", FMT_JSON },
		{ "jsonl", FMT_JSONL }, { "csv", FMT_CSV } };
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
		if (strcmp(s, fmts[i].name) == 0) {
			*out = fmts[i].fmt;
			return 0;
		}
	return cli_usage("--format: %s is not table, json, jsonl or csv", s);
}

// ------------------------------------------------------------ CSV

void
csv_field(FILE *fp, const char *s)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, fp);
		return;
	}
	fputc('"', fp);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', fp);
		fputc(*s, fp);
	}
	fputc('"', fp);
}

// ------------------------------------------------------------ JSON

struct jout {
	out_fmt fmt;
	FILE *fp;
	size_t n;
	char *buf;
	size_t cap;
};

jout *
json_open(out_fmt fmt, FILE *fp)
{
	jout *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->fmt = fmt;
	j->fp = fp;
	return j;
}

void
json_item(jout *j, void *obj)
{
	json_t *o = obj;
	if (o == NULL)
		return;
	// one fwrite per object: json_dumpf writes token by token
	const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
	size_t n = json_dumpb(o, j->buf, j->cap, flags);
	if (n > j->cap) {
		j->cap = n * 2;
		j->buf = xrealloc(j->buf, j->cap);
		n = json_dumpb(o, j->buf, j->cap, flags);
	}
	if (j->fmt == FMT_JSON)
		fputs(j->n ? ",\n  " : "[\n  ", j->fp);
	fwrite(j->buf, 1, n, j->fp);
	if (j->fmt == FMT_JSONL)
		fputc('\n', j->fp);
	j->n++;
	json_decref(o);
}

void
json_close(jout *j)
{
	if (j == NULL)
		return;
	if (j->fmt == FMT_JSON)
		fputs(j->n ? "\n]\n" : "[]\n", j->fp);
	j->n = 0;
	fflush(j->fp);
	json_discard(j);
}

void
json_discard(jout *j)
{
	if (j == NULL)
		return;
	if (j->fmt == FMT_JSON && j->n)
		fputs("\n]\n", j->fp); // keep what was printed valid
	free(j->buf);
	free(j);
}

// ------------------------------------------------------------ tables

struct table {
	out_fmt fmt;
	FILE *fp;
	const tcol *cols;
	size_t ncols;
	size_t *width;
	char **rows;     // buffered rows: ncols strings each
	size_t nrows, caprows;
	bool streaming;  // widths fixed, header printed
	bool csv_head;   // CSV header printed
	jout *json;
};

static size_t
display_width(const char *s)
{
	// count UTF-8 code points, not bytes
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

static void
pad(FILE *fp, size_t n)
{
	while (n--)
		fputc(' ', fp);
}

static void
print_cell(table *t, size_t i, const char *s, bool header)
{
	size_t w = display_width(s);
	bool last = i + 1 == t->ncols;
	bool right = header || t->cols[i].type == COL_INT;
	if (i)
		fputs(" | ", t->fp);
	if (right) {
		if (w < t->width[i])
			pad(t->fp, t->width[i] - w);
		fputs(s, t->fp);
	} else {
		fputs(s, t->fp);
		if (!last && w < t->width[i])
			pad(t->fp, t->width[i] - w);
	}
}

static void
print_row(table *t, const char *const *cells)
{
	// rendered in memory first: an empty last cell must not leave
	// trailing blanks
	char *line = NULL;
	size_t len = 0;
	FILE *out = t->fp;
	FILE *mem = open_memstream(&line, &len);
	if (mem)
		t->fp = mem;
	for (size_t i = 0; i < t->ncols; i++) {
		// a newline inside a cell would break the table
		const char *s = cells[i] ? cells[i] : "";
		if (strpbrk(s, "\n\r\t")) {
			char *c = strdup(s);
			if (c) {
				for (char *p = c; *p; p++)
					if (*p == '\n' || *p == '\r' || *p == '\t')
						*p = ' ';
				print_cell(t, i, c, false);
				free(c);
				continue;
			}
		}
		print_cell(t, i, s, false);
	}
	if (mem) {
		fclose(mem);
		t->fp = out;
		while (len > 0 && line[len - 1] == ' ')
			len--;
		fwrite(line, 1, len, out);
		free(line);
	}
	fputc('\n', t->fp);
}

static void
start_stream(table *t)
{
	size_t total = 0;
	for (size_t i = 0; i < t->ncols; i++) {
		const char *h = t->cols[i].name;
		print_cell(t, i, h, true);
		total += t->width[i] + (i ? 3 : 0);
	}
	fputc('\n', t->fp);
	for (size_t i = 0; i < total; i++)
		fputc('-', t->fp);
	fputc('\n', t->fp);
	for (size_t r = 0; r < t->nrows; r++) {
		print_row(t, (const char *const *)&t->rows[r * t->ncols]);
		for (size_t i = 0; i < t->ncols; i++)
			free(t->rows[r * t->ncols + i]);
	}
	free(t->rows);
	t->rows = NULL;
	t->nrows = t->caprows = 0;
	t->streaming = true;
}

table *
table_open(out_fmt fmt, const tcol *cols, size_t ncols, FILE *fp)
{
	table *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->fmt = fmt;
	t->fp = fp;
	t->cols = cols;
	t->ncols = ncols;
	if ((t->width = calloc(ncols, sizeof(size_t))) == NULL) {
		free(t);
		return NULL;
	}
	for (size_t i = 0; i < ncols; i++)
		t->width[i] = display_width(cols[i].name);
	if (fmt == FMT_JSON || fmt == FMT_JSONL) {
		t->json = json_open(fmt, fp);
	}
	return t;
}

static void
csv_head(table *t)
{
	if (t->csv_head)
		return;
	for (size_t i = 0; i < t->ncols; i++) {
		if (i)
			fputc(',', t->fp);
		csv_field(t->fp, t->cols[i].name);
	}
	fputs("\r\n", t->fp);
	t->csv_head = true;
}

void
table_row(table *t, const char *const *cells)
{
	if (t == NULL)
		return;
	switch (t->fmt) {
	case FMT_CSV:
		csv_head(t);
		for (size_t i = 0; i < t->ncols; i++) {
			if (i)
				fputc(',', t->fp);
			csv_field(t->fp, cells[i] ? cells[i] : "");
		}
		fputs("\r\n", t->fp);
		return;
	case FMT_JSON:
	case FMT_JSONL: {
		json_t *o = json_object();
		for (size_t i = 0; i < t->ncols; i++) {
			const char *s = cells[i] ? cells[i] : "";
			json_t *v;
			char *end;
			long long n = strtoll(s, &end, 10);
			if (t->cols[i].type == COL_INT && *s && *end == '\0')
				v = json_integer(n);
			else
				v = json_string(s);
			json_object_set_new(o, t->cols[i].name, v);
		}
		json_item(t->json, o);
		return;
	}
	case FMT_TABLE:
		break;
	}
	if (t->streaming) {
		print_row(t, cells);
		return;
	}
	if (t->nrows == t->caprows) {
		size_t cap = t->caprows ? t->caprows * 2 : 64;
		t->rows = xrealloc(t->rows, cap * t->ncols * sizeof(char *));
		t->caprows = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		const char *s = cells[i] ? cells[i] : "";
		size_t w = display_width(s);
		if (w > t->width[i])
			t->width[i] = w;
		t->rows[t->nrows * t->ncols + i] = xstrdup(s);
	}
	t->nrows++;
	if (t->nrows >= TABLE_BUFFER)
		start_stream(t);
}

void
table_close(table *t)
{
	if (t == NULL)
		return;
	if (t->fmt == FMT_TABLE && !t->streaming)
		start_stream(t);
	if (t->fmt == FMT_CSV)
		csv_head(t);
	json_close(t->json);
	t->json = NULL;
	table_discard(t);
}

void
table_discard(table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->rows[i]);
	free(t->rows);
	json_discard(t->json);
	fflush(t->fp);
	free(t->width);
	free(t);
}
