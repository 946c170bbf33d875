import type { Report } from './report.js';

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
const W = 640;
const H = 200;
const PAD = 30;

/** One inline SVG chart: the series, its Theil-Sen trend line, anomalies (red), and an alert's change point (solid) and the sample that raised it (dotted). */
function chart(s: Report['series'][number]): string {
  const pts = s.points;
  const values = pts.map((p) => p[1]);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || 1;
  const x = (i: number) => PAD + (i * (W - 2 * PAD)) / Math.max(1, pts.length - 1);
  const y = (v: number) => H - PAD - ((v - lo) * (H - 2 * PAD)) / span;
  const line = pts.map((p, i) => `${x(i).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
  const t = s.trend;
  const trend = `<line class="trend" x1="${x(0)}" y1="${y(t.theil_sen_intercept).toFixed(1)}" x2="${x(pts.length - 1)}" y2="${y(t.theil_sen_intercept + t.theil_sen_slope * (pts.length - 1)).toFixed(1)}" stroke="#888" stroke-dasharray="4 3"/>`;
  const index = new Map(pts.map((p, i) => [p[0], i]));
  const marks = s.anomalies
    .filter((a) => index.has(a.at))
    .map(
      (a) =>
        `<circle class="anomaly" cx="${x(index.get(a.at) as number).toFixed(1)}" cy="${y(a.value).toFixed(1)}" r="4" fill="none" stroke="#d22"><title>${esc(`${a.method}: ${a.value} (expected ${a.expected[0]}..${a.expected[1]})`)}</title></circle>`,
    )
    .join('');
  // Where the change began (the alert's change point: its first sample, task and commit), and when it was raised.
  const at = (t: unknown) => (typeof t === 'number' ? pts.findIndex((p) => p[0] >= t) : -1);
  const cp = s.alert?.change_point as
    { at?: number; task_id?: string | null; labels?: Record<string, string>; ratio_low?: number; ratio_high?: number } | undefined;
  const changeAt = at(cp?.at);
  const raisedAt = at(s.alert?.at);
  const where = cp
    ? `${cp.labels?.commit ? `commit ${cp.labels.commit}, ` : ''}task ${cp.task_id ?? '?'}, ×${cp.ratio_low ?? '?'}–${cp.ratio_high ?? '?'}`
    : '';
  const change =
    (changeAt >= 0
      ? `<line class="change-point" data-at="${cp?.at}" x1="${x(changeAt)}" y1="${PAD}" x2="${x(changeAt)}" y2="${H - PAD}" stroke="#e80" stroke-width="2"><title>${esc(`change began: ${where}`)}</title></line>`
      : '') +
    (raisedAt >= 0
      ? `<line class="alert-raised" x1="${x(raisedAt)}" y1="${PAD}" x2="${x(raisedAt)}" y2="${H - PAD}" stroke="#e80" stroke-dasharray="2 3"><title>regression raised</title></line>`
      : '');
  return `<svg class="chart" data-metric="${esc(s.metric)}" data-group="${esc(s.group)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(`${s.metric} for ${s.group}`)}">
<rect x="0" y="0" width="${W}" height="${H}" fill="#fff" stroke="#ddd"/>
<text x="${PAD}" y="18" font-size="12">${esc(hi.toPrecision(4))}</text><text x="${PAD}" y="${H - 8}" font-size="12">${esc(lo.toPrecision(4))}</text>
<polyline class="series" points="${line}" fill="none" stroke="#2563eb" stroke-width="1.5"/>${trend}${marks}${change}</svg>`;
}

/** A self-contained HTML page a person can open: per metric, per group, a chart and what the analysis found. */
export function renderHtml(r: Report): string {
  const byMetric = new Map<string, Report['series']>();
  for (const s of r.series) byMetric.set(s.metric, [...(byMetric.get(s.metric) ?? []), s]);
  const sections = [...byMetric]
    .map(
      ([metric, series]) => `<section class="metric" id="${esc(metric)}"><h2>${esc(metric)}</h2>
${series
  .map(
    (s) => `<div class="series"><h3>${esc(s.group)}</h3>
<p>n ${s.summary.n} · median ${esc(s.summary.median)} · p95 ${esc(s.summary.p95)} · trend <b>${esc(s.trend.classification)}</b> (${esc(s.trend.direction)}, ${(s.trend.relative_change * 100).toFixed(1)}% across the window, confidence ${esc(s.trend.confidence)}) · ${s.anomalies.length} anomal${s.anomalies.length === 1 ? 'y' : 'ies'}${s.alert ? ` · <b class="alert">${esc(s.alert.severity)}</b> ${esc(s.alert.message ?? '')}` : ''}</p>
${chart(s)}</div>`,
  )
  .join('\n')}</section>`,
    )
    .join('\n');
  const alerts = r.alerts.recent
    .map((a) => `<li>${esc(new Date(Number(a.at)).toISOString())} ${esc(a.event)} ${esc(a.severity)}: ${esc(a.message ?? a.series)}</li>`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fleet performance report</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}h3{margin-bottom:.2em}.alert{color:#b00}svg{display:block;margin-bottom:1em}</style></head><body>
<h1>Fleet performance report</h1>
<p>Generated ${esc(r.generated_at)} · ${r.events.processed} events analysed (${r.events.malformed} malformed skipped, ${r.events.duplicates} repeats ignored) of ${r.events.written} written${r.events.lost_before_read + r.events.gaps.length > 0 ? ` · <strong>lost: ${r.events.lost_before_read} trimmed before they were read, ${r.events.gaps.length} loss(es) of Redis data</strong>` : ''} · metrics: ${r.metrics.map((m) => `<a href="#${esc(m)}">${esc(m)}</a>`).join(', ')}</p>
<h2>Alerts</h2><ul class="alerts">${alerts || '<li>none</li>'}</ul>
${sections}
</body></html>
`;
}
