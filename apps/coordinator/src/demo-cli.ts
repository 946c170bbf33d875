import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadFleetCliSettings, repoRoot } from '@fleet/config';

interface View {
  id: string;
  name: string;
  type: string;
  state: string;
  timings: { run_ms: number | null };
  error: { reason: string } | null;
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new Error(`${new URL(url).origin} is not reachable (${(err as Error).message}): start the fleet with npm start`, { cause: err });
  }
  const body = (await res.json()) as T & { message?: string };
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${body.message ?? ''}`);
  return body;
}

/**
 * `npm run demo`: submits the example tasks (and a burst of synthetic load so the fleet grows), shows
 * progress while they run, and ends with a summary: tasks by state, time, fleet size over time, alerts.
 */
async function main(): Promise<number> {
  const { values } = parseArgs({ options: { load: { type: 'string', default: '80' }, file: { type: 'string' } } });
  const urls = loadFleetCliSettings(process.env);
  const file = values.file ?? join(repoRoot(), 'examples', 'config', 'test_tasks.json');
  const examples = JSON.parse(readFileSync(file, 'utf8')) as { tasks: unknown[] };
  const load = Array.from({ length: Number(values.load) }, (_, i) => ({
    type: 'synthetic',
    name: `demo load ${i}`,
    labels: { model_name: 'demo-load' },
    config: { duration_ms: 250, mode: 'sleep' },
  }));
  const started = Date.now();
  const { ids } = await json<{ ids: string[] }>(`${urls.coordinatorUrl}/tasks/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tasks: [...examples.tasks, ...load] }),
  });
  console.log(`submitted ${examples.tasks.length} example tasks from ${file} and ${load.length} synthetic load tasks`);
  const fleet: Array<{ t: number; workers: number }> = [];
  let views: View[] = [];
  for (;;) {
    views = await Promise.all(ids.map((id) => json<View>(`${urls.coordinatorUrl}/tasks/${id}`)));
    const pools = await json<{ pools: Array<{ pool: string; running: number }> }>(`${urls.resourceManagerUrl}/pools`).catch(() => ({ pools: [] }));
    const workers = pools.pools.reduce((n, p) => n + p.running, 0);
    const t = (Date.now() - started) / 1000;
    if (fleet.at(-1)?.workers !== workers) fleet.push({ t, workers });
    const by = (s: string) => views.filter((v) => v.state === s).length;
    console.log(
      `${t.toFixed(1).padStart(6)} s  queued ${by('queued')}  active ${by('active')}  completed ${by('completed')}  failed ${by('failed')}  | workers ${workers}`,
    );
    if (views.every((v) => FINAL.has(v.state)) || t > 300) break;
    await sleep(1000);
  }
  const elapsed = (Date.now() - started) / 1000;
  console.log('\nsummary');
  const types = [...new Set(views.map((v) => v.type))];
  console.log(`  ${'type'.padEnd(10)} ${'completed'.padStart(9)} ${'failed'.padStart(7)} ${'other'.padStart(6)}`);
  for (const type of types) {
    const of = views.filter((v) => v.type === type);
    const n = (s: string) => of.filter((v) => v.state === s).length;
    console.log(
      `  ${type.padEnd(10)} ${String(n('completed')).padStart(9)} ${String(n('failed')).padStart(7)} ${String(of.length - n('completed') - n('failed')).padStart(6)}`,
    );
  }
  for (const v of views.filter((x) => x.state === 'failed')) console.log(`  failed: ${v.name} (${v.error?.reason ?? 'unknown'})`);
  console.log(`  time: ${elapsed.toFixed(1)} s for ${views.length} tasks`);
  console.log(`  fleet size over time: ${fleet.map((f) => `${f.workers} @${f.t.toFixed(0)}s`).join(' → ')}`);
  const alerts = await json<{ recent: Array<{ event: string; message: string }> }>(`${urls.trendAnalyzerUrl}/alerts`).catch(() => ({ recent: [] }));
  console.log(`  alerts: ${alerts.recent.length === 0 ? 'none' : ''}`);
  for (const a of alerts.recent.slice(0, 10)) console.log(`    ${a.event}: ${a.message}`);
  const accounted = views.filter((v) => FINAL.has(v.state)).length;
  console.log(`  accounted for: ${accounted} of ${views.length}`);
  return accounted === views.length ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`demo: ${err.message}`);
    process.exit(1);
  },
);
