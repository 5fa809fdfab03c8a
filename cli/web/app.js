// copal web: the page. Everything it shows comes from the JSON API of
// copal web (README: "copal web"), refreshed every few seconds without a
// reload. Text from the database is put into the page with textContent,
// never as HTML.
'use strict';

const $ = (s) => document.querySelector(s);
let info = null;
let timer = null;
let failedNext = 0, resultsNext = 0, lastSearch = null;
const charts = {};

async function api(path, opts) {
	const r = await fetch('/api/' + path, Object.assign({ credentials: 'same-origin' }, opts || {}));
	let body = null;
	try { body = await r.json(); } catch (e) { body = null; }
	if (!r.ok) {
		const msg = (body && body.error) || r.statusText;
		if (r.status === 401)
			showError('not authorized: open the URL that copal web printed (…/?token=…)');
		throw new Error(r.status + ': ' + msg);
	}
	return body;
}

function showError(msg) {
	const e = $('#error');
	e.textContent = msg;
	e.hidden = !msg;
}

function el(tag, text, cls) {
	const e = document.createElement(tag);
	if (text !== undefined && text !== null)
		e.textContent = String(text);
	if (cls)
		e.className = cls;
	return e;
}

function row(tbody, cells) {
	const tr = document.createElement('tr');
	for (const c of cells)
		tr.appendChild(c instanceof Node ? c : el('td', c));
	tbody.appendChild(tr);
	return tr;
}

function taskLink(uuid) {
	const td = el('td');
	const a = el('a', uuid.slice(0, 8), 'task-link');
	a.href = '#task=' + uuid;
	a.title = uuid;
	td.appendChild(a);
	return td;
}

function num(n) { const td = el('td', n, 'n'); return td; }

function fmtAge(s) {
	if (s < 120) return s.toFixed(0) + ' s';
	if (s < 7200) return (s / 60).toFixed(1) + ' min';
	return (s / 3600).toFixed(1) + ' h';
}

// ------------------------------------------------------------ panels

async function refreshCounts() {
	const c = await api('counts?limit=100');
	const tb = $('#states tbody');
	tb.replaceChildren();
	for (const [st, n] of Object.entries(c.by_state)) {
		if (n === 0) continue;
		const tr = row(tb, [el('td', st, 'st-' + st), num(n)]);
		tr.dataset.state = st;
		tr.dataset.count = n;
	}
	$('#total').textContent = c.total;
	const wb = $('#workflows tbody');
	wb.replaceChildren();
	for (const w of c.workflows) {
		const tr = row(wb, [w.name, num(w.tasks)]);
		tr.dataset.workflow = w.name;
	}
	$('#workflows-more').textContent = c.more ? 'first ' + c.workflows.length + ' of ' + c.n_workflows : '';
}

function lineChart(id, label, color) {
	return new Chart($('#' + id), {
		type: 'line',
		data: { datasets: [{ label: label, data: [], borderColor: color, backgroundColor: color + '33', fill: true, pointRadius: 0, borderWidth: 1.5 }] },
		options: {
			animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
			plugins: { legend: { display: false } },
			scales: {
				x: { type: 'linear', ticks: { callback: (v) => new Date(v).toLocaleTimeString(), maxTicksLimit: 8 } },
				y: { beginAtZero: true },
			},
		},
	});
}

function setSeries(chart, s, key) {
	const pts = [];
	for (let i = 0; i < s.t.length; i++)
		pts.push({ x: s.t[i], y: s[key][i] });
	chart.data.datasets[0].data = pts;
	chart.update('none');
}

async function refreshStats() {
	const [all, hour] = await Promise.all([api('stats?range=all'), api('stats?range=hour')]);
	if (!charts.thrAll) {
		charts.thrAll = lineChart('thr-all', 'finished/min', '#2a7ab0');
		charts.utilAll = lineChart('util-all', 'busy nodes', '#c0602a');
		charts.thrHour = lineChart('thr-hour', 'finished/min', '#2a7ab0');
		charts.utilHour = lineChart('util-hour', 'busy nodes', '#c0602a');
	}
	if (all.t) {
		setSeries(charts.thrAll, all, 'thr');
		setSeries(charts.utilAll, all, 'util');
	}
	if (hour.t) {
		setSeries(charts.thrHour, hour, 'thr');
		setSeries(charts.utilHour, hour, 'util');
	}
	const s = $('#summary');
	s.textContent = all.loaded === false && !all.t ? 'reading the event log…' :
		`${all.finished} finished, ${all.failed} failed, ${all.runs} runs; ` +
		`${all.per_min.toFixed(1)} finished/min over the campaign, ` +
		`${hour.t ? hour.finished_shown : 0} in the last hour; ${all.busy_nodes.toFixed(2)} nodes busy now` +
		(all.loaded ? '' : ` (reading the event log: ${all.events} events so far)`);
	s.dataset.finished = all.finished;
}

async function refreshLaunchers() {
	const l = await api('launchers?limit=100');
	const tb = $('#launchers tbody');
	tb.replaceChildren();
	for (const x of l.launchers)
		row(tb, [num(x.id), x.host, el('td', x.owner, 'mono'), fmtAge(x.age_s), num(x.tasks)]);
	if (l.launchers.length === 0)
		row(tb, ['—', 'none', '', '', '']);
}

async function refreshJobs() {
	const j = await api('jobs?limit=50');
	const tb = $('#jobs tbody');
	tb.replaceChildren();
	for (const x of j.jobs)
		row(tb, [num(x.id), x.scheduler_id, x.queue, num(x.nodes), x.state + (x.sched_state ? ' (' + x.sched_state + ')' : ''), x.message]);
	if (j.jobs.length === 0)
		row(tb, ['—', 'none', '', '', '', '']);
}

function failedRows(f, append) {
	const tb = $('#failed tbody');
	if (!append) tb.replaceChildren();
	for (const t of f.tasks) {
		const pre = el('pre', t.tail);
		const td = el('td');
		td.appendChild(pre);
		const tr = row(tb, [taskLink(t.uuid), t.name, t.workflow, num(t.return_code), td]);
		tr.dataset.uuid = t.uuid;
		tr.dataset.rc = t.return_code;
	}
	failedNext = f.next;
	$('#failed-more').hidden = !f.more;
}

async function refreshFailed() {
	failedRows(await api('failed?limit=20'), false);
}

async function showTask(uuid) {
	const p = $('#task-panel');
	if (!uuid) { p.hidden = true; return; }
	const t = await api('task?uuid=' + encodeURIComponent(uuid));
	p.hidden = false;
	p.dataset.uuid = t.uuid;
	$('#task-title').textContent = t.name + ' (' + t.uuid + ')';
	const kv = $('#task-fields');
	kv.replaceChildren();
	for (const k of ['uuid', 'name', 'workflow', 'app', 'args', 'state', 'attempt', 'return_code', 'changed'])
		row(kv, [k, t[k]]);
	const tb = $('#history tbody');
	tb.replaceChildren();
	for (const e of t.history) {
		const tr = row(tb, [e.time, e.from, el('td', e.to, 'st-' + e.to), num(e.attempt), num(e.return_code), e.node, e.user, e.message]);
		tr.dataset.to = e.to;
		tr.dataset.user = e.user;
	}
	$('#task-tail').textContent = t.tail;
	$('#task-actions').hidden = !(info && info.allow_actions);
}

async function action(what) {
	const uuid = $('#task-panel').dataset.uuid;
	if (!uuid || !confirm(`${what} task ${uuid}?`)) return;
	try {
		const r = await api(what + '?uuid=' + encodeURIComponent(uuid), { method: 'POST', headers: { 'X-Copal-Action': '1' } });
		showError('');
		alert(`${what}: ${r.changed} task(s) changed`);
	} catch (e) { showError(what + ' failed: ' + e.message); }
	refresh();
}

function searchQuery(form) {
	const q = new URLSearchParams();
	for (const k of ['uuid', 'name', 'workflow', 'state', 'batch_job']) {
		const v = form.elements[k].value.trim();
		if (v) q.set(k, v);
	}
	// key=value tags separated by spaces, all required
	for (const t of form.elements.tags.value.trim().split(/\s+/))
		if (t) q.append('tag', t);
	q.set('limit', '50');
	return q;
}

async function search(append) {
	const q = lastSearch || searchQuery($('#search'));
	lastSearch = q;
	if (append) q.set('after', resultsNext); else q.delete('after');
	const r = await api('search?' + q.toString());
	const tb = $('#results tbody');
	if (!append) tb.replaceChildren();
	for (const t of r.tasks)
		row(tb, [taskLink(t.uuid), t.name, t.workflow, el('td', t.state, 'st-' + t.state), t.changed]).dataset.name = t.name;
	resultsNext = r.next;
	$('#results-more').hidden = !r.more;
}

const outcomeColor = { JOB_FINISHED: '#3a9a4a', RUN_DONE: '#3a9a4a', RUN_ERROR: '#c03030', RUN_TIMEOUT: '#d08020', running: '#2a7ab0' };

async function timeline() {
	const f = $('#timeline-form');
	const q = new URLSearchParams();
	if (f.elements.since.value.trim()) q.set('since', f.elements.since.value.trim());
	if (f.elements.until.value.trim()) q.set('until', f.elements.until.value.trim());
	for (const k of ['jsonl', 'csv', 'chrome']) {
		const e = new URLSearchParams(q);
		e.set('format', k);
		$('#exp-' + k).href = '/api/export?' + e.toString();
	}
	const t = await api('timeline?' + q.toString());
	const data = t.spans.map((s) => ({ x: [s[1], s[2]], y: t.nodes[s[0]], outcome: s[3], uuid: s[4], name: s[5] }));
	$('#timeline-note').textContent = `${t.spans.length} runs on ${t.nodes.length} nodes` + (t.cut ? `; from ${new Date(t.since_ms).toLocaleTimeString()}: the window's last 100,000 events` : '') +
		(t.truncated ? ' (truncated: narrow the window)' : '');
	if (charts.timeline) charts.timeline.destroy();
	charts.timeline = new Chart($('#timeline'), {
		type: 'bar',
		data: { labels: t.nodes, datasets: [{ data: data, backgroundColor: data.map((d) => outcomeColor[d.outcome] || '#888'), borderSkipped: false, barPercentage: 0.9, categoryPercentage: 0.9 }] },
		options: {
			indexAxis: 'y', animation: false, responsive: true, maintainAspectRatio: false,
			plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => `${c.raw.name} ${c.raw.uuid.slice(0, 8)}: ${c.raw.outcome}, ${((c.raw.x[1] - c.raw.x[0]) / 1000).toFixed(1)} s` } } },
			scales: { x: { type: 'linear', min: t.since_ms, max: t.until_ms, ticks: { callback: (v) => new Date(v).toLocaleTimeString() } } },
			onClick: (ev, els) => { if (els.length) location.hash = 'task=' + data[els[0].index].uuid; },
		},
	});
}

// ------------------------------------------------------------ refresh

async function refresh() {
	try {
		info = await api('info');
		$('#db').textContent = info.db;
		document.title = 'copal web: ' + info.db;
		await Promise.all([refreshCounts(), refreshStats(), refreshLaunchers(), refreshJobs(), refreshFailed()]);
		const m = location.hash.match(/^#task=([0-9a-fA-F-]{1,36})$/);
		if (m) await showTask(m[1]);
		$('#status').textContent = `broker ${info.version}, pid ${info.broker_pid}; updated ${new Date().toLocaleTimeString()}`;
		document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
		showError('');
	} catch (e) {
		$('#status').textContent = 'error: ' + e.message;
	}
}

function schedule() {
	if (timer) clearInterval(timer);
	const ms = Number($('#period').value);
	timer = ms ? setInterval(refresh, ms) : null;
}

// A search by link, #search=tags=site%3Dx&batch_job=3 (the search box's
// fields): fills the box and runs it.
function searchFromHash() {
	const s = location.hash.match(/^#search=(.*)$/);
	if (!s) return false;
	const q = new URLSearchParams(s[1]);
	const f = $('#search');
	for (const k of ['uuid', 'name', 'workflow', 'state', 'tags', 'batch_job'])
		f.elements[k].value = q.get(k) || '';
	lastSearch = null;
	search(false).catch((e) => showError(e.message));
	return true;
}

function onHash() {
	if (searchFromHash()) return;
	const m = location.hash.match(/^#task=([0-9a-fA-F-]{1,36})$/);
	showTask(m ? m[1] : null).catch((e) => showError(e.message));
}

document.addEventListener('DOMContentLoaded', () => {
	const sel = $('#search-state');
	for (const s of ['READY', 'AWAITING_PARENTS', 'RUNNING', 'RUN_DONE', 'JOB_FINISHED', 'RUN_ERROR', 'RUN_TIMEOUT', 'RESTART_READY', 'FAILED', 'USER_KILLED', 'PARENT_KILLED'])
		sel.appendChild(el('option', s));
	$('#period').addEventListener('change', schedule);
	$('#search').addEventListener('submit', (e) => { e.preventDefault(); lastSearch = null; search(false).catch((x) => showError(x.message)); });
	$('#results-more').addEventListener('click', () => search(true).catch((x) => showError(x.message)));
	$('#failed-more').addEventListener('click', () => api('failed?limit=20&after=' + failedNext).then((f) => failedRows(f, true)).catch((x) => showError(x.message)));
	$('#timeline-form').addEventListener('submit', (e) => { e.preventDefault(); timeline().catch((x) => showError(x.message)); });
	$('#task-close').addEventListener('click', (e) => { e.preventDefault(); location.hash = ''; });
	$('#btn-kill').addEventListener('click', () => action('kill'));
	$('#btn-restart').addEventListener('click', () => action('restart'));
	window.addEventListener('hashchange', onHash);
	searchFromHash();
	refresh().then(() => timeline().catch((x) => showError(x.message)));
	schedule();
});
