import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '@fleet/config';
import { FleetKeys } from '@fleet/redis';
import type * as RedisServers from '../scripts/lib/redis-server.mjs';

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

/** Polls until `probe` is truthy; the benchmark's only way of waiting. */
export async function until<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 120_000,
  everyMs = 10,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  output: () => string;
  stop: () => Promise<void>;
}

export function run(args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, args, { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    child,
    pid: child.pid as number,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Peak resident set size of a live process, in MiB (Linux /proc VmHWM). */
export function peakRssMb(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** The repository's Redis and port helpers (scripts/ is not compiled into dist: loaded from the repository). */
export async function redisServers(): Promise<typeof RedisServers> {
  return (await import(pathToFileURL(join(repoRoot(), 'scripts', 'lib', 'redis-server.mjs')).href)) as typeof RedisServers;
}

/** A free port on 127.0.0.1, claimed for the whole run when a test run started this bench (see the helper). */
export async function freePort(): Promise<number> {
  return (await redisServers()).freePort();
}

const CLK_TCK = 100;

/** CPU time (user + system, µs) of a process and its live descendants, from /proc (Linux). */
export function cpuMicros(pid: number): number {
  let total = 0;
  const seen = new Set<number>();
  const visit = (p: number) => {
    if (seen.has(p)) return;
    seen.add(p);
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
      for (const t of readdirSync(`/proc/${p}/task`)) {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(' ').filter(Boolean)) visit(Number(c));
      }
    } catch {
      // gone meanwhile
    }
  };
  visit(pid);
  return total;
}

/** Redis's own count of the commands it ran (scripts' inner commands included), by command. */
export async function commandStats(redis: { info(section: string): Promise<string> }): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1], Number(m[2]));
  return out;
}

/** Commands run between two commandstats snapshots (INFO itself left out), total and the busiest ones. */
export function commandDelta(before: Map<string, number>, after: Map<string, number>): { total: number; top: Array<[string, number]> } {
  const delta: Array<[string, number]> = [...after]
    .filter(([name]) => name !== 'info')
    .map(([name, n]): [string, number] => [name, n - (before.get(name) ?? 0)])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  return { total: delta.reduce((s, [, n]) => s + n, 0), top: delta.slice(0, 8) };
}

/**
 * A JSON client for one app's HTTP API: `api<T>(method, path, body?)` resolves with the answer, or throws with its
 * status. It is `node:http` on a keep-alive agent rather than `fetch`: against a bare Node server on the 2-core
 * machine, `fetch` (undici) took 0.70 ms a request at the median and 6.2 at p99 where `node:http` took 0.16 and
 * 2.5, so `fetch` would put the client's own tail into the fleet's latencies.
 */
export function jsonApi(base: string): <T>(method: string, path: string, body?: unknown) => Promise<T> {
  const agent = new Agent({ keepAlive: true });
  const { hostname, port } = new URL(base);
  return <T>(method: string, path: string, body?: unknown): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: hostname,
          port,
          path,
          method,
          agent,
          headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c));
          res.on('error', reject).on('end', () => {
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) reject(new Error(`${method} ${path}: ${status} ${text}`));
            else {
              try {
                resolve(JSON.parse(text) as T);
              } catch (err) {
                reject(err instanceof Error ? err : new Error(String(err)));
              }
            }
          });
        },
      );
      req.on('error', reject).end(payload);
    });
}

/**
 * A coordinator and one worker of `pool` on `prefix`, with CONFIG_DIR `dir`: started, and ready (the coordinator
 * answers, the worker is registered) when the promise resolves. `stop` ends both.
 */
export async function oneWorkerFleet(o: {
  redis: { zcard(key: string): Promise<number> };
  url: string;
  dist: (...p: string[]) => string;
  nodeFlags: string[];
  prefix: string;
  dir: string;
  pool: string;
  /** The worker's entry under dist (the plain build by default). */
  workerEntry?: string[];
}): Promise<{ base: string; api: ReturnType<typeof jsonApi>; stop: () => Promise<void>; workerOutput: () => string }> {
  const env = { REDIS_URL: o.url, FLEET_PREFIX: o.prefix, CONFIG_DIR: o.dir, RATE_LIMIT_PER_MINUTE: '1000000' };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [
    run([...o.nodeFlags, o.dist('apps', 'coordinator', 'src', 'main.js')], { ...env, COORDINATOR_PORT: String(port) }),
    run([...o.nodeFlags, o.dist(...(o.workerEntry ?? ['apps', 'worker', 'src', 'main.js'])), '--pool', o.pool, '--id', `${o.pool}0`], env),
  ];
  const stop = async () => {
    await Promise.all(procs.map((x) => x.stop()));
  };
  try {
    await until(async () => (await fetch(`${base}/health/ready`).catch(() => undefined))?.ok, 'the coordinator', 30_000, 50);
    await until(async () => (await o.redis.zcard(new FleetKeys(o.prefix).workerIndex)) === 1, 'the worker', 30_000, 50);
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, api: jsonApi(base), stop, workerOutput: () => procs[1].output() };
}
