#!/usr/bin/python3
"""Line charts of bench/size_bench's CSV (stdlib only).

    scripts/size_svg.py -o OUTDIR [-t TITLE] CSV...

Several CSVs (runs of different sizes) are merged by size. Writes two SVG
files into OUTDIR and prints the targets as a Markdown table:
  size_figures.svg  one small chart per figure: x = tasks (log scale),
                    y = the figure (linear, from 0)
  size_ratios.svg   every figure divided by its value at the first size,
                    with the targets of issue 17 as dashed lines (rates
                    >= 0.8, heap <= 1.2, counts and first pages <= 1.5;
                    CPU per task <= 1.25, the same as a rate >= 0.8)
"""
import csv
import math
import sys

# (column, label, scale) of the charts; scale turns the CSV's unit into
# the one shown
FIGURES = [
    ("create_per_s", "create, tasks/s", 1),
    ("drain_per_s", "drain (claim + 3 reports), tasks/s", 1),
    ("export_events_per_s", "export jsonl, events/s", 1),
    ("raw_puts_per_s", "raw LMDB puts/s (reference)", 1),
    ("create_broker_cpu_us", "create: broker CPU per task, us", 1),
    ("drain_broker_cpu_us", "drain: broker CPU per task, us", 1),
    ("export_broker_cpu_us", "export: broker CPU per event, us", 1),
    ("export_copal_cpu_us", "export: copal CPU per event, us", 1),
    ("count_ms", "count by states (request), ms", 1),
    ("ls_by_states_ms", "copal ls --by-states, ms", 1),
    ("page_ready_ms", "first page READY (request), ms", 1),
    ("page_finished_ms", "first page JOB_FINISHED (request), ms", 1),
    ("ls_ready_ms", "copal ls --state READY --limit 50, ms", 1),
    ("copal_history_ms", "copal history UUID, ms", 1),
    ("check_s", "cpl_store_check, s", 1),
    ("check_cpu_s", "cpl_store_check, CPU s", 1),
    ("used_bytes_per_task", "used bytes per task", 1),
    ("rss_anon_create_kb", "broker RssAnon after create, MB", 1 / 1024),
    ("rss_anon_drain_kb", "broker RssAnon after drain, MB", 1 / 1024),
    ("vm_hwm_drain_kb", "broker VmHWM after drain, MB", 1 / 1024),
]

# (column, label, colour, target line) of the ratio chart
RATIOS = [
    ("create_per_s", "create rate", "#1f77b4", 0.8),
    ("drain_per_s", "drain rate", "#ff7f0e", 0.8),
    ("export_events_per_s", "export rate", "#2ca02c", 0.8),
    ("raw_puts_per_s", "raw LMDB puts (reference)", "#7f7f7f", None),
    ("create_broker_cpu_us", "create: broker CPU per task", "#aec7e8", 1.25),
    ("drain_broker_cpu_us", "drain: broker CPU per task", "#ffbb78", 1.25),
    ("export_broker_cpu_us", "export: broker CPU per event", "#98df8a",
     1.25),
    ("rss_anon_drain_kb", "broker RssAnon after drain", "#d62728", 1.2),
    ("count_ms", "count by states (request)", "#9467bd", 1.5),
    ("page_ready_ms", "first page READY", "#8c564b", 1.5),
    ("page_finished_ms", "first page JOB_FINISHED", "#e377c2", 1.5),
    ("history_ms", "history of a task", "#bcbd22", None),
    ("check_cpu_s/tasks", "cpl_store_check CPU per task", "#17becf", None),
]


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_n(n):
    if n >= 1e6 and n % 1e6 == 0:
        return "%dM" % (n // 1e6)
    if n >= 1e3 and n % 1e3 == 0:
        return "%dk" % (n // 1e3)
    return "%d" % n


def nice_v(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return "%.3gM" % (v / 1e6)
    if a >= 1e4:
        return "%.3gk" % (v / 1e3)
    return "%.3g" % v


class Chart:
    """One chart: a frame at (x0, y0) of w x h, x log scale over xs."""

    def __init__(self, out, x0, y0, w, h, xs, ymax, ymin=0.0):
        self.out, self.x0, self.y0, self.w, self.h = out, x0, y0, w, h
        self.lx0 = math.log10(min(xs))
        self.lx1 = math.log10(max(xs))
        if self.lx1 == self.lx0:
            self.lx0 -= 0.5
            self.lx1 += 0.5
        self.ymin, self.ymax = ymin, ymax if ymax > ymin else ymin + 1

    def px(self, x):
        f = (math.log10(x) - self.lx0) / (self.lx1 - self.lx0)
        return self.x0 + f * self.w

    def py(self, y):
        f = (y - self.ymin) / (self.ymax - self.ymin)
        return self.y0 + self.h - f * self.h

    def frame(self, title, xs):
        o = self.out
        o.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                 'fill="none" stroke="#999"/>' % (self.x0, self.y0, self.w,
                                                 self.h))
        o.append('<text x="%.1f" y="%.1f" font-size="12" '
                 'font-weight="bold">%s</text>' % (self.x0, self.y0 - 6,
                                                    esc(title)))
        for x in xs:
            X = self.px(x)
            o.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" '
                     'stroke="#eee"/>' % (X, self.y0, X, self.y0 + self.h))
            o.append('<text x="%.1f" y="%.1f" font-size="10" '
                     'text-anchor="middle">%s</text>' %
                     (X, self.y0 + self.h + 12, nice_n(x)))
        for i in range(5):
            y = self.ymin + (self.ymax - self.ymin) * i / 4
            Y = self.py(y)
            o.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" '
                     'stroke="#eee"/>' % (self.x0, Y, self.x0 + self.w, Y))
            o.append('<text x="%.1f" y="%.1f" font-size="10" '
                     'text-anchor="end">%s</text>' %
                     (self.x0 - 3, Y + 3, nice_v(y)))

    def line(self, xs, ys, colour, dash=None, dots=True, label=None):
        pts = " ".join("%.1f,%.1f" % (self.px(x), self.py(y))
                       for x, y in zip(xs, ys))
        d = ' stroke-dasharray="%s"' % dash if dash else ""
        t = "<title>%s</title>" % esc(label) if label else ""
        self.out.append('<polyline points="%s" fill="none" stroke="%s" '
                        'stroke-width="2"%s>%s</polyline>' %
                        (pts, colour, d, t))
        if dots:
            for x, y in zip(xs, ys):
                self.out.append('<circle cx="%.1f" cy="%.1f" r="3" '
                                'fill="%s"><title>%s: %s</title></circle>' %
                                (self.px(x), self.py(y), colour,
                                 nice_n(x), nice_v(y)))


def svg(w, h, body, title):
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
            'viewBox="0 0 %d %d" font-family="sans-serif">\n'
            '<rect width="100%%" height="100%%" fill="white"/>\n'
            '<text x="10" y="20" font-size="14" font-weight="bold">%s</text>\n'
            '%s\n</svg>\n' % (w, h, w, h, esc(title), "\n".join(body)))


def series(rows, col, scale=1.0):
    """The sizes and values of col in the rows that have it."""
    per_task = col.endswith("/tasks")  # "X/tasks": column X per task
    col = col[:-6] if per_task else col
    pts = [(float(r["tasks"]), float(r[col]) * scale /
            (float(r["tasks"]) if per_task else 1.0)) for r in rows
           if r.get(col) not in (None, "")]
    return [p[0] for p in pts], [p[1] for p in pts]


def figures(rows, xs, title):
    cols, cw, ch = 3, 260, 150
    figs = [f for f in FIGURES if series(rows, f[0])[0]]
    nrow = (len(figs) + cols - 1) // cols
    body = []
    for i, (col, label, scale) in enumerate(figs):
        sx, ys = series(rows, col, scale)
        x0 = 60 + (i % cols) * (cw + 70)
        y0 = 50 + (i // cols) * (ch + 50)
        c = Chart(body, x0, y0, cw, ch, xs, max(ys) * 1.1)
        c.frame(label, xs)
        c.line(sx, ys, "#1f77b4", label=label)
    return svg(60 + cols * (cw + 70), 50 + nrow * (ch + 50) + 10, body,
               title)


def ratios(rows, xs, title):
    body = []
    lines = []
    for col, label, colour, tgt in RATIOS:
        sx, ys = series(rows, col)
        if not ys or ys[0] <= 0:
            continue
        lines.append((label, colour, tgt, sx, [y / ys[0] for y in ys]))
    top = max([1.6] + [max(s[4]) * 1.05 for s in lines])
    w, h = 560, 360
    c = Chart(body, 60, 50, w, h, xs, top, 0.0)
    c.frame("each figure / its value at %s tasks" % nice_n(xs[0]), xs)
    for tgt, what in ((0.8, "rates >= 0.8"), (1.2, "heap <= 1.2"),
                      (1.25, "CPU per task <= 1.25"),
                      (1.5, "counts, pages <= 1.5")):
        Y = c.py(tgt)
        body.append('<line x1="60" y1="%.1f" x2="%.1f" y2="%.1f" '
                    'stroke="#444" stroke-dasharray="4,4"/>' %
                    (Y, 60 + w, Y))
        # labels right and left in turn: 1.2 and 1.25 are close
        lx = 64 if tgt == 1.25 else 60 + w - 4 - 6 * len(what)
        body.append('<text x="%.1f" y="%.1f" font-size="10" '
                    'fill="#444">%s</text>' % (lx, Y - 3, esc(what)))
    for i, (label, colour, tgt, sx, ys) in enumerate(lines):
        c.line(sx, ys, colour, dash="6,3" if tgt is None else None,
               label=label)
        Y = 60 + i * 18
        body.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" '
                    'stroke-width="2"%s/>' %
                    (60 + w + 20, Y, 60 + w + 45, Y, colour,
                     ' stroke-dasharray="6,3"' if tgt is None else ""))
        body.append('<text x="%d" y="%d" font-size="11">%s (%s at %s)'
                    '</text>' % (60 + w + 50, Y + 4, esc(label),
                                 "%.2f" % ys[-1], nice_n(sx[-1])))
    return svg(60 + w + 330, 50 + h + 40, body, title)


# (column, label, kind, bound): the targets of issue 17 between the
# first size and the last; kind "rate": last >= bound x first; "cost":
# last <= bound x first (or under the absolute bound abs, if given)
TARGETS = [
    ("create_per_s", "create rate", "rate", 0.8, None),
    ("drain_per_s", "drain rate", "rate", 0.8, None),
    ("export_events_per_s", "export rate", "rate", 0.8, None),
    ("create_broker_cpu_us", "create: broker CPU per task", "cost", 1.25,
     None),
    ("drain_broker_cpu_us", "drain: broker CPU per task", "cost", 1.25, None),
    ("export_broker_cpu_us", "export: broker CPU per event", "cost", 1.25,
     None),
    ("export_copal_cpu_us", "export: copal CPU per event", "cost", 1.25,
     None),
    ("rss_anon_drain_kb", "broker RssAnon after drain, kB", "cost", 1.2, None),
    ("count_ms", "count by states (request), ms", "cost", 1.5, 1.0),
    ("ls_by_states_ms", "copal ls --by-states, ms", "cost", 1.5, 20.0),
    ("page_ready_ms", "first page READY (request), ms", "cost", 1.5, 1.0),
    ("ls_ready_ms", "copal ls --state READY --limit 50, ms", "cost", 1.5,
     20.0),
    ("page_finished_ms", "first page JOB_FINISHED (request), ms", "cost",
     1.5, 1.0),
    ("ls_finished_ms", "copal ls --state JOB_FINISHED --limit 50, ms",
     "cost", 1.5, 20.0),
]


def targets(rows):
    """The targets as a Markdown table on stdout."""
    a, b = rows[0], rows[-1]
    na, nb = nice_n(float(a["tasks"])), nice_n(float(b["tasks"]))
    print("| figure | %s | %s | ratio | target | result |" % (na, nb))
    print("|---|---:|---:|---:|---|---|")
    for col, label, kind, bound, abs_ in TARGETS:
        if not a.get(col) or not b.get(col):
            continue
        x, y = float(a[col]), float(b[col])
        r = y / x if x else 0
        if kind == "rate":
            ok, want = r >= bound, ">= %gx" % bound
        else:
            ok = r <= bound or (abs_ is not None and y < abs_)
            want = "<= %gx" % bound + (" or < %g" % abs_ if abs_ else "")
        print("| %s | %s | %s | %.2f | %s | %s |" %
              (label, nice_v(x), nice_v(y), r, want,
               "PASS" if ok else "**MISS**"))


def main():
    args = sys.argv[1:]
    if len(args) < 3 or args[0] != "-o":
        sys.stderr.write("usage: size_svg.py -o OUTDIR [-t TITLE] CSV...\n")
        return 2
    out, title = args[1], "copal size_bench"
    args = args[2:]
    if len(args) >= 2 and args[0] == "-t":
        title, args = args[1], args[2:]
    rows = []
    for path in args:  # several runs: their rows by size
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    if not rows:
        sys.stderr.write("size_svg.py: no rows\n")
        return 1
    rows.sort(key=lambda r: float(r["tasks"]))
    xs = [float(r["tasks"]) for r in rows]
    for name, text in (("size_figures.svg", figures(rows, xs, title)),
                       ("size_ratios.svg", ratios(rows, xs, title))):
        with open("%s/%s" % (out, name), "w") as f:
            f.write(text)
        sys.stderr.write("%s/%s\n" % (out, name))
    targets(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
