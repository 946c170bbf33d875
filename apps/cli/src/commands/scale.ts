import { type Api, call, CliError } from '../api.js';

interface Pool {
  pool: string;
  provider: string;
  mode: string;
  pinned_workers: number | null;
  running: number;
  busy: number;
  min_workers: number;
  max_workers: number;
  depth: { waiting: number; active: number } | null;
  last_decision: { reason: string } | null;
  crash_loop: { reason: string } | null;
}

const line = (p: Pool) =>
  `${p.pool.padEnd(12)} ${p.provider.padEnd(6)} ${(p.mode === 'pinned' ? `pinned ${p.pinned_workers}` : 'auto').padEnd(9)} running ${String(p.running).padStart(3)} (busy ${p.busy}, ${p.min_workers}..${p.max_workers})  waiting ${p.depth?.waiting ?? '-'}  active ${p.depth?.active ?? '-'}  ${p.crash_loop ? `CRASH LOOP: ${p.crash_loop.reason}` : (p.last_decision?.reason ?? '')}`;

/** `fleet scale <pool> <workers|auto>`: pins a pool at a size, or returns it to its policy (operate role). */
export async function scale(a: Api, [pool, n, ...rest]: string[]): Promise<number> {
  if (!pool || !n || rest.length > 0) throw new CliError('usage: fleet scale <pool> <workers|auto>', 2);
  const path = `/pools/${encodeURIComponent(pool)}`;
  if (n === 'auto') console.log(line(await call<Pool>(a, a.resourceManager, 'DELETE', `${path}/pin`)));
  else if (/^\d+$/.test(n)) console.log(line(await call<Pool>(a, a.resourceManager, 'PUT', path, { workers: Number(n) })));
  else throw new CliError(`workers: "${n}" is neither a whole number nor "auto"`, 2);
  return 0;
}

/** `fleet pools`: every pool's size, depth, mode and last decision. */
export async function pools(a: Api): Promise<number> {
  for (const p of (await call<{ pools: Pool[] }>(a, a.resourceManager, 'GET', '/pools')).pools) console.log(line(p));
  return 0;
}

/** `fleet decisions [pool]`: the latest scaling decisions, newest first. */
export async function decisions(a: Api, [pool]: string[]): Promise<number> {
  const q = pool ? `?pool=${encodeURIComponent(pool)}` : '';
  const { decisions: list } = await call<{ decisions: Array<{ at: number; pool: string; from: number; to: number; reason: string }> }>(
    a,
    a.resourceManager,
    'GET',
    `/decisions${q}`,
  );
  for (const d of list) console.log(`${new Date(d.at).toISOString()} ${d.pool.padEnd(12)} ${d.from} → ${d.to}  ${d.reason}`);
  return 0;
}
