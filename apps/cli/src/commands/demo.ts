import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { repoRoot } from '@fleet/config';
import { type Api, call } from '../api.js';

interface View {
  id: string;
  name: string;
  type: string;
  state: string;
  error: { reason: string } | null;
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);

/**
 * `fleet demo [--load 80] [--file tasks.json]` (`npm run demo`): submits the example tasks and a burst of
 * synthetic load so the fleet grows, shows progress, and ends with a summary: tasks by state, time, the
 * fleet's size over time, alerts. Exits 0 when every task was accounted for.
 */
export async function demo(a: Api, argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { load: { type: 'string', default: '80' }, file: { type: 'string' } } });
  const file = values.file ?? join(repoRoot(), 'examples', 'config', 'test_tasks.json');
  const examples = JSON.parse(readFileSync(file, 'utf8')) as { tasks: unknown[] };
  const load = Array.from({ length: Number(values.load) }, (_, i) => ({
    type: 'synthetic',
    name: `demo load ${i}`,
    labels: { model_name: 'demo-load' },
    config: { duration_ms: 250, mode: 'sleep' },
  }));
  const started = Date.now();
  const { ids } = await call<{ ids: string[] }>(a, a.coordinator, 'POST', '/tasks/batch', { tasks: [...examples.tasks, ...load] });
  console.log(`submitted ${examples.tasks.length} example tasks from ${file} and ${load.length} synthetic load tasks`);
  const fleet: Array<{ t: number; workers: number }> = [];
  let views: View[] = [];
  for (;;) {
    views = await Promise.all(ids.map((id) => call<View>(a, a.coordinator, 'GET', `/tasks/${id}`)));
    const pools = await call<{ pools: Array<{ running: number }> }>(a, a.resourceManager, 'GET', '/pools').catch(() => ({ pools: [] }));
    const workers = pools.pools.reduce((n, p) => n + p.running, 0);
    const t = (Date.now() - started) / 1000;
    if (fleet.at(-1)?.workers !== workers) fleet.push({ t, workers });
    const by = (s: string) => views.filter((v) => v.state === s).length;
    console.log(
      `${t.toFixed(1).padStart(6)} s  queued ${by('queued')}  active ${by('active')}  completed ${by('completed')}  failed ${by('failed')}  | workers ${workers}`,
    );
    if (views.every((v) => FINAL.has(v.state)) || t > 300) break;
    await sleep(2000);
  }
  const elapsed = (Date.now() - started) / 1000;
  console.log('\nsummary');
  console.log(`  ${'type'.padEnd(10)} ${'completed'.padStart(9)} ${'failed'.padStart(7)} ${'other'.padStart(6)}`);
  for (const type of [...new Set(views.map((v) => v.type))]) {
    const of = views.filter((v) => v.type === type);
    const n = (s: string) => of.filter((v) => v.state === s).length;
    console.log(
      `  ${type.padEnd(10)} ${String(n('completed')).padStart(9)} ${String(n('failed')).padStart(7)} ${String(of.length - n('completed') - n('failed')).padStart(6)}`,
    );
  }
  for (const v of views.filter((x) => x.state === 'failed')) console.log(`  failed: ${v.name} (${v.error?.reason ?? 'unknown'})`);
  console.log(`  time: ${elapsed.toFixed(1)} s for ${views.length} tasks`);
  console.log(`  fleet size over time: ${fleet.map((f) => `${f.workers} @${f.t.toFixed(0)}s`).join(' → ')}`);
  const alerts = await call<{ recent: Array<{ event: string; message: string }> }>(a, a.trendAnalyzer, 'GET', '/alerts').catch(() => ({
    recent: [],
  }));
  console.log(`  alerts: ${alerts.recent.length === 0 ? 'none' : ''}`);
  for (const al of alerts.recent.slice(0, 10)) console.log(`    ${al.event}: ${al.message}`);
  const accounted = views.filter((v) => FINAL.has(v.state)).length;
  console.log(`  accounted for: ${accounted} of ${views.length}`);
  return accounted === views.length ? 0 : 1;
}
