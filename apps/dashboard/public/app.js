// The fleet's live page. It reads the same HTTP APIs a user has (through the dashboard, under /api/<app>/),
// polling every couple of seconds while the tab is visible, and never reloads. The token a user enters goes
// with every call; the apps decide what it may see and do.
import uPlot from '/vendor/uplot/uPlot.esm.js';

const POLL_MS = 2000;
const CHART_POLL_MS = 5000;
const $ = (sel) => document.querySelector(sel);
const token = () => sessionStorage.getItem('fleet-token') ?? '';

/** One call to an app's API through the dashboard; a refusal throws with the app's own words. */
async function api(app, path, init = {}) {
  const headers = { ...(init.body ? { 'content-type': 'application/json' } : {}), ...(token() ? { authorization: `Bearer ${token()}` } : {}) };
  const res = await fetch(`/api/${app}${path}`, { ...init, headers });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const why = body.errors?.length ? body.errors.map((e) => `${e.field}: ${e.reason}`).join('; ') : (body.message ?? `HTTP ${res.status}`);
    throw new Error(`${app} ${path}: ${res.status} ${why}`);
  }
  return body;
}

/** Builds an element: el('td', { class: 'x', title: 't' }, 'text', child…). Text is always text (never HTML). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return e;
}

const ago = (iso) => {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};
const ms = (n) => (n === null || n === undefined ? '' : n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`);

let lastError = '';
function showError(err) {
  lastError = err ? String(err.message ?? err) : '';
  $('#error').hidden = !lastError;
  $('#error').textContent = lastError;
}

// ---- pools and workers (resource manager) --------------------------------------------------------------
async function pin(pool, workers) {
  try {
    await api('resource-manager', `/pools/${encodeURIComponent(pool)}`, { method: 'PUT', body: JSON.stringify({ workers }) });
    await refresh();
  } catch (err) {
    showError(err);
  }
}
async function unpin(pool) {
  try {
    await api('resource-manager', `/pools/${encodeURIComponent(pool)}/pin`, { method: 'DELETE' });
    await refresh();
  } catch (err) {
    showError(err);
  }
}

function poolCard(p) {
  const input = el('input', {
    type: 'number',
    min: 0,
    max: p.max_workers,
    value: p.pinned_workers ?? p.desired ?? p.running,
    class: 'pin-input',
    'aria-label': `workers for ${p.pool}`,
  });
  const stat = (name, value, title) =>
    el('div', { class: `stat ${name}`, title }, el('b', { 'data-stat': name }, value ?? '–'), el('span', {}, name));
  return el(
    'article',
    { class: `card${p.crash_loop ? ' bad' : ''}`, 'data-pool': p.pool },
    el(
      'h3',
      {},
      p.pool,
      ' ',
      el('span', { class: `badge ${p.mode}` }, p.mode === 'pinned' ? `pinned at ${p.pinned_workers}` : `auto · ${p.strategy}`),
    ),
    el(
      'div',
      { class: 'stats' },
      stat('desired', p.desired, 'what the last decision wanted'),
      stat('running', p.running, 'started or registered'),
      stat('ready', p.ready),
      stat('busy', p.busy, 'holding a task'),
      stat('draining', p.draining),
    ),
    el(
      'p',
      { class: 'depth' },
      p.depth
        ? `queue: ${p.depth.waiting} waiting · ${p.depth.delayed} delayed (${p.depth.delayed_due} due) · ${p.depth.active} running`
        : 'queue: –',
      ` · ${p.min_workers}–${p.max_workers} workers · ${p.provider}`,
    ),
    p.crash_loop ? el('p', { class: 'error' }, `crash loop: ${p.crash_loop.reason}`) : '',
    p.last_decision
      ? el(
          'p',
          { class: 'muted' },
          `last: ${p.last_decision.action} to ${p.last_decision.desired} (${p.last_decision.reason}) — ${p.last_decision.outcome}`,
        )
      : '',
    p.provider === 'LOCAL'
      ? el(
          'div',
          { class: 'controls' },
          input,
          el('button', { type: 'button', class: 'pin', onclick: () => pin(p.pool, Number(input.value)) }, 'Pin'),
          el('button', { type: 'button', class: 'unpin', disabled: p.mode !== 'pinned', onclick: () => unpin(p.pool) }, 'Unpin'),
        )
      : '',
  );
}

async function loadPools() {
  const { pools } = await api('resource-manager', '/pools');
  // Keep what the user is typing: a card whose pin field has focus is not replaced.
  const focused = document.activeElement?.closest?.('[data-pool]')?.getAttribute('data-pool');
  const cards = $('#pool-cards');
  const next = pools.map((p) => (p.pool === focused ? cards.querySelector(`[data-pool="${CSS.escape(p.pool)}"]`) : poolCard(p)));
  cards.replaceChildren(...(next.length ? next : [el('p', { class: 'empty' }, 'no pools')]));
  $('#workers tbody').replaceChildren(
    ...pools.flatMap((p) =>
      p.workers.map((w) =>
        el(
          'tr',
          { 'data-worker': w.id, 'data-pool': p.pool },
          el('td', {}, w.id),
          el('td', {}, p.pool),
          el('td', {}, w.host),
          el('td', {}, w.pid),
          el('td', {}, el('span', { class: `badge ${w.status}` }, w.status)),
          el('td', {}, ...w.current_tasks.map((t) => el('a', { href: '#tasks', onclick: () => showTask(t) }, t, ' '))),
          el('td', {}, w.finished),
        ),
      ),
    ),
  );
}

/** Each live host's slots, pools, workers and quotas; the one holding the lease plans the fleet. */
async function loadHosts() {
  const { hosts } = await api('resource-manager', '/hosts');
  const pairs = (o) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  $('#hosts tbody').replaceChildren(
    ...hosts.map((h) =>
      el(
        'tr',
        { 'data-host': h.id },
        el('td', {}, h.id, h.holds_lease ? el('span', { class: 'badge auto', title: 'holds the lease: plans the fleet' }, 'plans') : ''),
        el('td', {}, h.hostname),
        el('td', {}, h.slots),
        el('td', {}, pairs(h.pools)),
        el('td', {}, pairs(h.workers)),
        el('td', {}, pairs(h.quotas)),
        el('td', {}, ago(h.last_beat)),
      ),
    ),
  );
  if (!hosts.length) $('#hosts tbody').append(el('tr', {}, el('td', { colspan: 7, class: 'empty' }, 'no host has reported yet')));
}

// ---- runs and tasks (coordinator) ----------------------------------------------------------------------
/** Finished runs do not change: their full view is read once. */
const finishedRuns = new Map();

async function loadRuns() {
  const { runs: list } = await api('coordinator', '/runs?limit=10');
  const runs = await Promise.all(
    list.map(async (r) => {
      if (finishedRuns.has(r.id)) return finishedRuns.get(r.id);
      const view = await api('coordinator', `/runs/${encodeURIComponent(r.id)}`);
      if (view.finished_at) finishedRuns.set(r.id, view);
      return view;
    }),
  );
  $('#run-rows').replaceChildren(
    ...runs.map((r) =>
      el(
        'tr',
        { 'data-run': r.id, 'data-state': r.state },
        el('td', { title: r.id }, r.name),
        el(
          'td',
          { class: 'source', title: r.source ? `${r.source.repo} @ ${r.source.commit}` : 'the pool workdir' },
          r.source ? `${r.source.repo.replace(/^.*\//, '').replace(/\.git$/, '')} @ ${r.source.ref ?? r.source.commit.slice(0, 10)}` : '–',
        ),
        el('td', {}, el('span', { class: `badge ${r.state}` }, r.state)),
        el(
          'td',
          {},
          el('progress', { max: 1, value: r.progress, title: `${r.counts.done} of ${r.counts.total}` }),
          el('span', { class: 'muted' }, ` ${r.counts.done}/${r.counts.total}`),
        ),
        el('td', {}, r.counts.passed),
        el('td', {}, r.counts.failed + r.counts.error),
        el('td', {}, r.counts.flaky),
        el('td', {}, r.eta_s === null ? '' : `${Math.round(r.eta_s)} s`),
        el('td', {}, ago(r.created_at)),
      ),
    ),
  );
}

async function loadTasks() {
  const state = $('#task-state').value;
  const { tasks } = await api('coordinator', `/tasks?limit=25${state ? `&state=${state}` : ''}`);
  $('#task-rows').replaceChildren(
    ...tasks.map((t) =>
      el(
        'tr',
        { 'data-task': t.id },
        el('td', {}, el('a', { href: '#tasks', onclick: () => showTask(t.id) }, t.id)),
        el('td', {}, t.name),
        el('td', {}, t.pool),
        el('td', {}, el('span', { class: `badge ${t.state}` }, t.state)),
        el('td', {}, t.worker_id ?? ''),
        el('td', {}, ms(t.timings.run_ms)),
        el('td', {}, `${t.attempts.made}/${t.attempts.max}`),
        el('td', {}, ago(t.timings.finished_at ?? t.timings.started_at ?? t.timings.queued_at)),
      ),
    ),
  );
}

async function showTask(id) {
  const box = $('#task-detail');
  box.hidden = false;
  try {
    const t = await api('coordinator', `/tasks/${encodeURIComponent(id)}`);
    const out = t.result?.output_tail ?? t.error?.output_tail ?? '';
    box.replaceChildren(
      el(
        'h3',
        {},
        `${t.name} `,
        el('span', { class: `badge ${t.state}` }, t.state),
        el('button', { type: 'button', class: 'close', onclick: () => (box.hidden = true) }, '×'),
      ),
      el(
        'p',
        { class: 'muted' },
        `${t.id} · pool ${t.pool} · ${t.type} · by ${t.submitted_by} · attempts ${t.attempts.made}/${t.attempts.max} · worker ${t.worker_id ?? '–'} · waited ${ms(t.timings.wait_ms)} · ran ${ms(t.timings.run_ms)}`,
      ),
      t.error ? el('p', { class: 'error' }, `${t.error.reason}: ${t.error.message}`) : '',
      t.attempt_errors.length
        ? el('ol', { class: 'attempts' }, ...t.attempt_errors.map((e, i) => el('li', {}, `attempt ${i + 1}: ${e.reason}: ${e.message}`)))
        : '',
      out ? el('pre', { class: 'output' }, out) : el('p', { class: 'muted' }, 'no output kept'),
    );
  } catch (err) {
    box.replaceChildren(el('p', { class: 'error' }, String(err.message ?? err)));
  }
}

// ---- decisions (resource manager) and alerts (analyzer) -----------------------------------------------
async function loadDecisions() {
  const { decisions } = await api('resource-manager', '/decisions?limit=30');
  $('#timeline').replaceChildren(
    ...decisions.map((d) =>
      el(
        'li',
        { class: d.to > d.from ? 'up' : 'down' },
        el('time', { datetime: new Date(d.at).toISOString() }, new Date(d.at).toLocaleTimeString()),
        ` ${d.pool}: ${d.from} → ${d.to} `,
        el('span', { class: 'muted' }, `${d.reason} (${d.manager})`),
      ),
    ),
  );
  if (!decisions.length) $('#timeline').append(el('li', { class: 'empty' }, 'no decisions yet'));
}

async function loadAlerts() {
  const { active, recent } = await api('trend-analyzer', '/alerts?limit=20');
  const items = [
    ...active.map((a) => el('li', { class: `alert ${a.severity}` }, el('b', {}, 'active '), a.message ?? `${a.severity}: ${a.series}`)),
    ...recent.map((a) => el('li', { class: 'muted' }, `${new Date(Number(a.at)).toLocaleString()} ${a.event}: ${a.message ?? a.series}`)),
  ];
  $('#alert-list').replaceChildren(...(items.length ? items : [el('li', { class: 'empty' }, 'no alerts')]));
}

// ---- charts (analyzer) -----------------------------------------------------------------------------------
const charts = new Map();

/** Draws vertical markers (a change point) on a uPlot chart. */
const markers = (list) => ({
  hooks: {
    draw: [
      (u) => {
        const { ctx } = u;
        for (const m of list()) {
          const x = u.valToPos(m.at / 1000, 'x', true);
          if (!Number.isFinite(x)) continue;
          ctx.save();
          ctx.strokeStyle = '#e80';
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.fillStyle = '#b60';
          ctx.font = `${11 * devicePixelRatio}px system-ui`;
          ctx.fillText(m.label, x + 4 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
          ctx.restore();
        }
      },
    ],
  },
});

function chartData(s) {
  const xs = s.points.map((p) => p[0] / 1000);
  const ys = s.points.map((p) => p[1]);
  const trend = s.points.map((_, i) => s.trend.theil_sen_intercept + s.trend.theil_sen_slope * i);
  const anomalous = new Map(s.anomalies.map((a) => [a.at, a.value]));
  const anomalies = s.points.map((p) => anomalous.get(p[0]) ?? null);
  return [xs, ys, trend, anomalies];
}

function changeMarks(s) {
  const cp = s.alert?.change_point;
  if (!cp) return [];
  return [{ at: cp.at, label: cp.labels?.commit ? `change: ${cp.labels.commit}` : 'change' }];
}

async function loadCharts() {
  const report = await api('trend-analyzer', '/report');
  const grid = $('#chart-grid');
  const seen = new Set();
  // Run times first (what regressions are about), then queue waits, then the rest.
  const rank = (m) => (m === 'run_time_ms' ? 0 : m === 'queue_wait_ms' ? 1 : 2);
  const series = [...report.series].sort(
    (a, b) => rank(a.metric) - rank(b.metric) || `${a.metric}|${a.group}`.localeCompare(`${b.metric}|${b.group}`),
  );
  for (const s of series) {
    if (s.points.length < 2) continue;
    const key = `${s.metric}|${s.group}`;
    seen.add(key);
    const data = chartData(s);
    const existing = charts.get(key);
    if (existing) {
      existing.series = s;
      existing.plot.setData(data);
      existing.caption.textContent = caption(s);
      continue;
    }
    const box = el('figure', { class: 'chart', 'data-series': key });
    const cap = el('figcaption', {}, caption(s));
    box.append(cap);
    grid.append(box);
    const entry = { series: s, caption: cap, plot: undefined };
    entry.plot = new uPlot(
      {
        width: 460,
        height: 200,
        plugins: [markers(() => changeMarks(entry.series))],
        scales: { x: { time: true } },
        series: [
          {},
          { label: s.metric, stroke: '#2563eb', width: 1.5 },
          { label: 'trend', stroke: '#888', dash: [4, 3], points: { show: false } },
          { label: 'anomaly', stroke: 'transparent', points: { show: true, size: 7, stroke: '#d22', fill: '#fff' } },
        ],
      },
      data,
      box,
    );
    charts.set(key, entry);
  }
  for (const [key, c] of charts) {
    if (seen.has(key)) continue;
    c.plot.destroy();
    c.caption.parentElement?.remove();
    charts.delete(key);
  }
  if (!charts.size && !grid.querySelector('.empty')) grid.append(el('p', { class: 'empty' }, 'no series yet: run some tasks'));
  if (charts.size) grid.querySelector('.empty')?.remove();
}

function caption(s) {
  const a = s.alert ? ` · ${s.alert.severity}: ${s.alert.message ?? ''}` : '';
  return `${s.metric} · ${s.group} · n ${s.summary.n} · median ${s.summary.median} · ${s.trend.classification}${a}`;
}

// ---- the loop ------------------------------------------------------------------------------------------
let updatedAt = 0;
async function refresh() {
  const results = await Promise.allSettled([loadPools(), loadHosts(), loadRuns(), loadTasks(), loadDecisions(), loadAlerts()]);
  const failed = results.find((r) => r.status === 'rejected');
  showError(failed ? failed.reason : null);
  if (!failed) updatedAt = Date.now();
}

async function refreshCharts() {
  try {
    await loadCharts();
  } catch (err) {
    showError(err);
  }
}

function tickLive() {
  const live = $('#live');
  if (!updatedAt) return;
  const s = Math.round((Date.now() - updatedAt) / 1000);
  live.textContent = lastError ? 'error' : s <= 3 ? 'live' : `updated ${s}s ago`;
  live.className = `live ${lastError ? 'bad' : s <= 3 ? 'ok' : 'stale'}`;
}

function every(msInterval, fn) {
  let timer;
  const loop = async () => {
    if (!document.hidden) await fn();
    timer = setTimeout(loop, msInterval);
  };
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) {
      clearTimeout(timer);
      void loop();
    }
  });
  void loop();
}

$('#token').value = token();
$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem('fleet-token', $('#token').value.trim());
  void refresh();
  void refreshCharts();
});
$('#lookup').addEventListener('submit', (e) => {
  e.preventDefault();
  const id = $('#task-id').value.trim();
  if (id) void showTask(id);
});
$('#task-state').addEventListener('change', () => void loadTasks().catch(showError));
every(POLL_MS, refresh);
every(CHART_POLL_MS, refreshCharts);
setInterval(tickLive, 1000);
