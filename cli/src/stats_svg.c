// copal stats --plot DIR: the profile's time series as two SVG line plots
// (utilization and throughput), written by hand: axes, round ticks, grid,
// labels and the series.
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "stats.h"

// A round step near range / n: 1, 2 or 5 times a power of ten.
static double
nice_step(double range, int n)
{
	if (!(range > 0))
		return 1;
	double raw = range / n, p = 1;
	while (p * 10 <= raw)
		p *= 10;
	while (p > raw)
		p /= 10;
	double f = raw / p;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

// The smallest multiple of step at or above v (v >= 0).
static double
ceil_to(double v, double step)
{
	double k = (double)(uint64_t)(v / step);
	if (k * step < v - step * 1e-9)
		k += 1;
	return k * step;
}

static void
svg_text(FILE *fp, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", fp); break;
		case '>': fputs("&gt;", fp); break;
		case '&': fputs("&amp;", fp); break;
		case '"': fputs("&quot;", fp); break;
		default: fputc(*s, fp); break;
		}
	}
}

// A tick label: 0.25, 40, 2500, 12k, 1.5M (the decimals the step needs).
static void
fmt_num(char *buf, size_t len, double v, double step)
{
	const char *suffix = "";
	if (v >= 10000 && step >= 1000) {
		double div = v >= 1e6 && step >= 1e5 ? 1e6 : 1e3;
		suffix = div == 1e6 ? "M" : "k";
		v /= div;
		step /= div;
	}
	int dec = 0;
	for (double s = step; s < 0.999 && dec < 9; s *= 10)
		dec++;
	snprintf(buf, len, "%.*f%s", dec, v, suffix);
}

// A line plot of n points (x in seconds since t0_us, y) with axes, ticks,
// grid and labels. Returns 0 or an exit code.
static int
svg_plot(const char *path, const char *title, const char *ylabel,
    uint64_t t0_us, const double *x, const double *y, size_t n)
{
	const double W = 900, H = 500, ml = 80, mr = 30, mt = 50, mb = 70;
	const double pw = W - ml - mr, ph = H - mt - mb;
	double xmax = 0, ymax = 0;
	for (size_t i = 0; i < n; i++) {
		if (x[i] > xmax)
			xmax = x[i];
		if (y[i] > ymax)
			ymax = y[i];
	}
	// x unit: seconds, minutes or hours
	const char *unit = "s";
	double div = 1;
	if (xmax > 3 * 3600) {
		unit = "h";
		div = 3600;
	} else if (xmax > 600) {
		unit = "min";
		div = 60;
	}
	double xr = xmax / div, xstep = nice_step(xr > 0 ? xr : 1, 8);
	double xtop = ceil_to(xr > 0 ? xr : 1, xstep);
	double ystep = nice_step(ymax > 0 ? ymax : 1, 5);
	double ytop = ceil_to(ymax > 0 ? ymax * 1.04 : 1, ystep);
	FILE *fp = fopen(path, "w");
	if (fp == NULL) {
		cli_err("cannot write %s: %s", path, strerror(errno));
		return EXIT_ERR;
	}
	char start[40], num[32];
	time_t ts = (time_t)(t0_us / 1000000u);
	struct tm tm;
	gmtime_r(&ts, &tm);
	strftime(start, sizeof(start), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(fp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
	    "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
	    "font-family=\"sans-serif\" font-size=\"13\">\n", W, H, W, H);
	fprintf(fp, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(fp, "<text x=\"%.1f\" y=\"28\" text-anchor=\"middle\" "
	    "font-size=\"18\" font-weight=\"bold\">", W / 2);
	svg_text(fp, title);
	fprintf(fp, "</text>\n");
	// grid, ticks and tick labels
	fprintf(fp, "<g stroke=\"#dddddd\" stroke-width=\"1\">\n");
	for (double v = 0; v <= ytop + ystep / 2; v += ystep) {
		double py = mt + ph - v / ytop * ph;
		fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
		    ml, py, ml + pw, py);
	}
	for (double v = 0; v <= xtop + xstep / 2; v += xstep) {
		double px = ml + v / xtop * pw;
		fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
		    px, mt, px, mt + ph);
	}
	fprintf(fp, "</g>\n<g text-anchor=\"end\">\n");
	for (double v = 0; v <= ytop + ystep / 2; v += ystep) {
		double py = mt + ph - v / ytop * ph;
		fmt_num(num, sizeof(num), v, ystep);
		fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", ml - 8,
		    py + 4, num);
	}
	fprintf(fp, "</g>\n<g text-anchor=\"middle\">\n");
	for (double v = 0; v <= xtop + xstep / 2; v += xstep) {
		double px = ml + v / xtop * pw;
		fmt_num(num, sizeof(num), v, xstep);
		fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", px,
		    mt + ph + 20, num);
	}
	fprintf(fp, "</g>\n");
	// axes and their labels
	fprintf(fp, "<g stroke=\"black\" stroke-width=\"1.5\">"
	    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
	    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/></g>\n",
	    ml, mt + ph, ml + pw, mt + ph, ml, mt, ml, mt + ph);
	if (t0_us)
		fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
		    "time since %s UTC (%s)</text>\n", ml + pw / 2, H - 20, start,
		    unit);
	else
		fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
		    "time since the first run (%s): no runs</text>\n",
		    ml + pw / 2, H - 20, unit);
	fprintf(fp, "<text transform=\"translate(22 %.1f) rotate(-90)\" "
	    "text-anchor=\"middle\">", mt + ph / 2);
	svg_text(fp, ylabel);
	fprintf(fp, "</text>\n");
	// the series
	fprintf(fp, "<polyline fill=\"none\" stroke=\"#1f77b4\" "
	    "stroke-width=\"2\" stroke-linejoin=\"round\" points=\"");
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "%s%.1f,%.1f", i ? " " : "",
		    ml + x[i] / div / xtop * pw, mt + ph - y[i] / ytop * ph);
	fprintf(fp, "\"/>\n");
	if (n <= 60) { // few points: mark them
		fprintf(fp, "<g fill=\"#1f77b4\">\n");
		for (size_t i = 0; i < n; i++)
			fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>\n",
			    ml + x[i] / div / xtop * pw,
			    mt + ph - y[i] / ytop * ph);
		fprintf(fp, "</g>\n");
	}
	fprintf(fp, "</svg>\n");
	if (fclose(fp) != 0) {
		cli_err("cannot write %s: %s", path, strerror(errno));
		return EXIT_ERR;
	}
	return 0;
}

// "1 s", "20 s", "2 min", "6 h", "7 d"
static void
fmt_width(uint64_t s, char *buf, size_t len)
{
	if (s % 86400 == 0)
		snprintf(buf, len, "%" PRIu64 " d", s / 86400);
	else if (s % 3600 == 0)
		snprintf(buf, len, "%" PRIu64 " h", s / 3600);
	else if (s % 60 == 0)
		snprintf(buf, len, "%" PRIu64 " min", s / 60);
	else
		snprintf(buf, len, "%" PRIu64 " s", s);
}

int
stats_write_plots(const struct stats *st, const char *dir)
{
	char path[PATH_MAX];
	int rc;
	size_t n = st->ser.n;
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		cli_err("cannot make %s: %s", dir, strerror(errno));
		return EXIT_ERR;
	}
	double *x = xcalloc(n ? n : 1, sizeof(double));
	double *u = xcalloc(n ? n : 1, sizeof(double));
	double *t = xcalloc(n ? n : 1, sizeof(double));
	stats_points(st, x, u, t);
	char title[256], bw[32];
	fmt_width(stats_bucket_s(st), bw, sizeof(bw));
	snprintf(title, sizeof(title), "Utilization%s%s (%s, %s buckets)",
	    st->w->workflow ? ": workflow " : "",
	    st->w->workflow ? st->w->workflow : "",
	    st->by_runs ? "runs" : "nodes", bw);
	snprintf(path, sizeof(path), "%s/utilization.svg", dir);
	rc = svg_plot(path, title, st->by_runs ? "runs in progress" :
	    "busy nodes (num_nodes / node_packing_count)", st->act_start, x, u, n);
	if (rc == 0) {
		snprintf(title, sizeof(title), "Throughput%s%s (%s buckets)",
		    st->w->workflow ? ": workflow " : "",
		    st->w->workflow ? st->w->workflow : "", bw);
		snprintf(path, sizeof(path), "%s/throughput.svg", dir);
		rc = svg_plot(path, title, "tasks finished per minute",
		    st->act_start, x, t, n);
	}
	free(x);
	free(u);
	free(t);
	return rc;
}
