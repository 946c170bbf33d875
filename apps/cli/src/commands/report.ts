import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Api, call } from '../api.js';

/** `fleet report [--out fleet-report.html]` (`npm run report`): the trend analyzer's report as an HTML page. */
export async function report(a: Api, argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string', default: 'fleet-report.html' } } });
  const html = await call<string>(a, a.trendAnalyzer, 'GET', '/report.html', undefined, 'text');
  const out = resolve(values.out);
  writeFileSync(out, html);
  const charts = (html.match(/<svg/g) ?? []).length;
  console.log(`wrote ${out}: ${charts} chart(s)`);
  return 0;
}
