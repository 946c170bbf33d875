import { loadFleetCliSettings } from '@fleet/config';

const USAGE = `usage: npm run fleet -- <command>
  scale <pool> <workers>   pin a pool at a number of workers (0..max_workers)
  scale <pool> auto        return the pool to its scaling policy
  pools                    pools with their size, depth, mode and last decision
  decisions [pool]         the latest scaling decisions
(talks to the resource manager at RESOURCE_MANAGER_URL, default http://127.0.0.1:$RESOURCE_MANAGER_PORT or 8081)`;

interface ErrorBody {
  message?: string;
  errors?: Array<{ field: string; reason: string }>;
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new Error(`the resource manager is not reachable at ${base} (${(err as Error).message}); start it with npm run start:resource-manager`, {
      cause: err,
    });
  }
  const json = (await res.json()) as ErrorBody;
  if (!res.ok)
    throw new Error(json.errors?.length ? json.errors.map((e) => `${e.field}: ${e.reason}`).join('; ') : (json.message ?? `HTTP ${res.status}`));
  return json;
}

interface Pool {
  pool: string;
  provider: string;
  mode: string;
  pinned_workers: number | null;
  desired: number | null;
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

async function main(argv: string[]): Promise<number> {
  const { resourceManagerUrl: base } = loadFleetCliSettings(process.env);
  const [command, ...args] = argv;
  if (command === 'scale' && args.length === 2) {
    const [pool, n] = args as [string, string];
    const path = `/pools/${encodeURIComponent(pool)}`;
    if (n === 'auto') {
      console.log(line((await call(base, 'DELETE', `${path}/pin`)) as Pool));
      return 0;
    }
    if (!/^\d+$/.test(n)) throw new Error(`workers: "${n}" is neither a whole number nor "auto"`);
    console.log(line((await call(base, 'PUT', path, { workers: Number(n) })) as Pool));
    return 0;
  }
  if (command === 'pools' && args.length === 0) {
    for (const p of ((await call(base, 'GET', '/pools')) as { pools: Pool[] }).pools) console.log(line(p));
    return 0;
  }
  if (command === 'decisions' && args.length <= 1) {
    const q = args[0] ? `?pool=${encodeURIComponent(args[0])}` : '';
    const { decisions } = (await call(base, 'GET', `/decisions${q}`)) as {
      decisions: Array<{ at: number; pool: string; from: number; to: number; reason: string }>;
    };
    for (const d of decisions) console.log(`${new Date(d.at).toISOString()} ${d.pool.padEnd(12)} ${d.from} → ${d.to}  ${d.reason}`);
    return 0;
  }
  console.error(USAGE);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`fleet: ${err.message}`);
    process.exit(1);
  },
);
