import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort } from '../../../scripts/lib/redis-server.mjs';
import { waitFor } from './wait-for.js';

function git(args: string[], cwd?: string): string {
  const r = spawnSync('git', ['-c', 'user.name=fleet-test', '-c', 'user.email=test@fleet.invalid', '-c', 'init.defaultBranch=main', ...args], {
    cwd,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

export interface TestRepo {
  /** The bare repository a server or `file://` serves. */
  bare: string;
  url: string;
  /** Each commit's sha, in order. */
  shas: string[];
}

/**
 * A real bare repository made of `commits` (each the files it writes over the one before, and a tag), with
 * `main` at the last one. Served as `file://` here; `gitDaemon` serves the same folder over git://.
 */
export function makeRepo(parent: string, name: string, commits: Array<{ files: Record<string, string>; tag?: string }>): TestRepo {
  const work = mkdtempSync(join(tmpdir(), 'fleet-repo-work-'));
  git(['init', '-q', work]);
  const shas: string[] = [];
  for (const [i, c] of commits.entries()) {
    for (const [path, body] of Object.entries(c.files)) {
      mkdirSync(dirname(join(work, path)), { recursive: true });
      writeFileSync(join(work, path), body);
    }
    git(['add', '-A'], work);
    git(['commit', '-q', '-m', `commit ${i + 1}`], work);
    shas.push(git(['rev-parse', 'HEAD'], work));
    if (c.tag) git(['tag', c.tag], work);
  }
  const bare = join(parent, `${name}.git`);
  git(['clone', '-q', '--bare', work, bare]);
  spawnSync('rm', ['-rf', work]);
  return { bare, url: `file://${bare}`, shas };
}

/** `git daemon` serving every repository under `base` on `host`, with its log (one "Connection from" per fetch). */
export interface GitDaemon {
  port: number;
  url(name: string): string;
  /** Addresses that connected, one entry per connection (the daemon's own log). */
  connections(): string[];
  /** Each fetch (upload-pack request): the address it came from and the repository it asked for. */
  fetches(): Array<{ from: string; repo: string }>;
  stop(): Promise<void>;
}

export async function gitDaemon(base: string, host = '127.0.0.1'): Promise<GitDaemon> {
  const port = await freePort();
  const argv = ['daemon', '--reuseaddr', '--export-all', `--base-path=${base}`, `--listen=${host}`, `--port=${port}`, '--verbose', base];
  const child: ChildProcess = spawn('git', argv);
  let log = '';
  child.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await waitFor(() => /Ready to rumble/.test(log), { what: `git daemon on ${host}:${port}`, timeoutMs: 10_000 });
  return {
    port,
    url: (name) => `git://${host}:${port}/${name}.git`,
    connections: () => [...log.matchAll(/Connection from (\S+?):\d+/g)].map((m) => m[1]),
    fetches() {
      const from = new Map([...log.matchAll(/\[(\d+)\] Connection from (\S+?):\d+/g)].map((m) => [m[1], m[2]]));
      return [...log.matchAll(/\[(\d+)\] Request upload-pack for '([^']+)'/g)].map((m) => ({ from: from.get(m[1]) ?? '?', repo: m[2] }));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A TCP relay to `target` that can hold new connections instead of relaying them: a fetch through it is then
 * provably in progress (the client is connected, no byte has come back) for as long as the test wants.
 */
export interface HoldingRelay {
  port: number;
  /** Connections it holds now. */
  held(): number;
  /** Connections it has accepted in all. */
  accepted(): number;
  hold(): void;
  /** Relays again, and drops the held connections (the clients see the remote hang up). */
  release(): void;
  /** Relays again, the held connections included (their requests go through as if they had never waited). */
  resume(): void;
  close(): Promise<void>;
}

export async function holdingRelay(targetPort: number, host = '127.0.0.1'): Promise<HoldingRelay> {
  let holding = false;
  const held: Socket[] = [];
  let acceptedCount = 0;
  const open = new Set<Socket>();
  const relay = (client: Socket) => {
    const upstream = createConnection({ host, port: targetPort });
    open.add(upstream);
    upstream.on('close', () => open.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  };
  const server: Server = createServer((client) => {
    acceptedCount++;
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => undefined);
    if (!holding) return relay(client);
    held.push(client);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    port,
    held: () => held.length,
    accepted: () => acceptedCount,
    hold: () => (holding = true),
    release() {
      holding = false;
      for (const s of held.splice(0)) s.destroy();
    },
    resume() {
      holding = false;
      for (const s of held.splice(0)) relay(s);
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
