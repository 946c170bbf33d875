import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadFleetCliSettings } from '@fleet/config';
import { renderHtml } from './html-report.js';
import type { Report } from './report.js';

/** `npm run report [-- --out report.html]`: fetches GET /report from the trend analyzer and writes an HTML page. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'fleet-report.html' } } });
  const base = loadFleetCliSettings(process.env).trendAnalyzerUrl;
  let res: Response;
  try {
    res = await fetch(`${base}/report`);
  } catch (err) {
    throw new Error(`the trend analyzer is not reachable at ${base} (${(err as Error).message}); start it with npm run start:trend-analyzer`, {
      cause: err,
    });
  }
  if (!res.ok) throw new Error(`GET ${base}/report answered ${res.status}`);
  const report = (await res.json()) as Report;
  const out = resolve(values.out);
  writeFileSync(out, renderHtml(report));
  console.log(
    `wrote ${out}: ${report.series.length} chart(s) for ${report.metrics.length} metric(s), ${report.alerts.active.length} active alert(s)`,
  );
}

main().catch((err: Error) => {
  console.error(`report: ${err.message}`);
  process.exit(1);
});
