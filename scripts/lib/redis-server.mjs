// Plain JavaScript with no dependencies: the start and test commands use it before `npm ci` has run,
// and the testing lib uses it to start private servers for tests that stop or restart Redis.
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { createConnection, createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

export const HOW_TO_GET_REDIS = [
  'No Redis is reachable and no redis-server binary was found. Either:',
  '  - install one: sudo apt-get install -y redis-server   (Debian/Ubuntu; brew install redis on macOS)',
  '  - or start one with Docker: docker compose -f docker-compose.test.yml up -d   (then REDIS_URL=redis://127.0.0.1:6379)',
  '  - or point REDIS_URL at a Redis 7 you already run.',
].join('\n');

/**
 * The least-privilege ACL rules of a fleet's Redis user: keys under the fleet's prefix only, no channels, and
 * only the command categories BullMQ and the fleet use (no @dangerous command but INFO, which BullMQ and
 * ioredis read at connection), and TIME. `keyPatterns`: `<prefix>:*` for one fleet; a hash-tag prefix `{name}`
 * with spread pools also needs `{name:*` (its pools' keys).
 */
export function fleetAclRules(...keyPatterns) {
  return [
    'resetchannels',
    ...keyPatterns.map((p) => `~${p}`),
    '-@all',
    ...[
      'read',
      'write',
      'keyspace',
      'stream',
      'list',
      'hash',
      'set',
      'sortedset',
      'string',
      'scripting',
      'transaction',
      'connection',
      'blocking',
    ].map((c) => `+@${c}`),
    '-@dangerous',
    '+info',
    // The resource managers judge hosts' beats on Redis's clock.
    '+time',
  ];
}

/** The URL as it may be printed: its password replaced. */
export const redactUrl = (url) => url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');

/**
 * True when something at `url` answers PING (an auth error also proves a Redis is there). A `rediss://` URL
 * is checked with a TLS handshake (the server's certificate is the client's business, not this check's).
 */
export function isRedisReachable(url, timeoutMs = 1000) {
  const { hostname, port, protocol } = new URL(url);
  const host = hostname || '127.0.0.1';
  return new Promise((resolve) => {
    const socket =
      protocol === 'rediss:'
        ? tlsConnect({ host, port: Number(port || 6379), servername: host, rejectUnauthorized: false })
        : createConnection({ host, port: Number(port || 6379) });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on(protocol === 'rediss:' ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.on('data', (buf) => done(/^(\+PONG|-NOAUTH|-ERR)/.test(buf.toString())));
  });
}

/** The redis-server binary on PATH (or in the usual sbin folders), or null. */
export function findRedisServer(env = process.env) {
  const dirs = [...(env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/opt/homebrew/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Whether nothing listens on 127.0.0.1:`port` right now. */
function portIsFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The range test ports are claimed from: below Linux's ephemeral range (32768+), so no outgoing socket takes one. */
const CLAIMED_PORTS = { first: 20_000, count: 12_000 };

/**
 * A TCP port on 127.0.0.1 that nothing listens on. Under a test run (`FLEET_PORT_DIR`, set by `npm test`
 * for every jest worker and every process they start) each port is claimed once for the whole run by
 * creating `<FLEET_PORT_DIR>/<port>` exclusively, so parallel workers, and the apps they start, never
 * get the same port between one asking and the other binding. Elsewhere the kernel picks an ephemeral one.
 */
export async function freePort() {
  const dir = process.env.FLEET_PORT_DIR;
  if (!dir) {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address();
        server.close(() => resolve(port));
      });
    });
  }
  const start = randomInt(CLAIMED_PORTS.count);
  for (let i = 0; i < CLAIMED_PORTS.count; i++) {
    const port = CLAIMED_PORTS.first + ((start + i) % CLAIMED_PORTS.count);
    try {
      closeSync(openSync(join(dir, String(port)), 'wx'));
    } catch {
      continue; // claimed by another process of this run
    }
    if (await portIsFree(port)) return port;
  }
  throw new Error(`no free port left in ${CLAIMED_PORTS.first}-${CLAIMED_PORTS.first + CLAIMED_PORTS.count - 1} (claims in ${dir})`);
}

/**
 * Starts a private redis-server on a free port (or `port`) and resolves once it answers: memory-only by
 * default, or with an append-only file (`appendonly: 'always'` fsyncs every write, `'everysec'` once a
 * second). `extraArgs` are more server options (e.g. `['--maxmemory', '10mb']`).
 * `sentinel` starts the binary as a Redis Sentinel watching a master on 127.0.0.1 instead.
 * `stop()` ends it by its PID and removes its folder; `restart()` stops it and starts it again on the same
 * port with the same folder (an AOF server comes back with its data, a memory-only one empty).
 */
export async function startRedisServer({ binary = findRedisServer(), port, timeoutMs = 10_000, appendonly, extraArgs = [], sentinel } = {}) {
  if (!binary) throw new Error(HOW_TO_GET_REDIS);
  const chosen = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'fleet-redis-'));
  const url = `redis://127.0.0.1:${chosen}`;
  if (sentinel) {
    // Sentinel mode of the same binary; it rewrites its configuration file, so the file lives in its folder.
    const m = sentinel.masterName;
    writeFileSync(
      join(dir, 'sentinel.conf'),
      [
        `sentinel monitor ${m} 127.0.0.1 ${sentinel.masterPort} ${sentinel.quorum ?? 2}`,
        `sentinel down-after-milliseconds ${m} ${sentinel.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${m} ${sentinel.failoverTimeoutMs ?? 5000}`,
        `sentinel parallel-syncs ${m} 1`,
        '',
      ].join('\n'),
    );
  }
  const args = sentinel
    ? [join(dir, 'sentinel.conf'), '--sentinel', '--port', String(chosen), '--bind', '127.0.0.1', '--dir', dir, '--loglevel', 'warning', ...extraArgs]
    : [
        '--port',
        String(chosen),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
        '--dir',
        dir,
        '--loglevel',
        'warning',
        ...(appendonly ? ['--appendonly', 'yes', '--appendfsync', appendonly] : ['--appendonly', 'no']),
        ...extraArgs,
      ];

  const launch = async () => {
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const deadline = Date.now() + timeoutMs;
    while (!(await isRedisReachable(url, 200))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`redis-server on port ${chosen} did not start: ${stderr.trim() || 'no answer'}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return { child, exited };
  };

  let current;
  try {
    current = await launch();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const halt = async (signal) => {
    const { child, exited } = current;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    url,
    port: chosen,
    get pid() {
      return current.child.pid;
    },
    async stop(signal = 'SIGTERM') {
      await halt(signal);
      rmSync(dir, { recursive: true, force: true });
    },
    /** Stops the server (SIGTERM unless told otherwise): for tests of what happens while Redis is away. */
    async kill(signal = 'SIGTERM') {
      await halt(signal);
    },
    /** Starts it again after `kill()`, on the same port and folder. */
    async start() {
      current = await launch();
    },
    async restart(signal = 'SIGTERM') {
      await halt(signal);
      current = await launch();
    },
  };
}

/**
 * A real Redis Cluster of `masters` nodes on free ports (no replicas), made with `redis-cli --cluster create`;
 * resolves once every node says `cluster_state:ok`. `url` is its `redis+cluster://` address.
 */
export async function startRedisCluster({ masters = 3, timeoutMs = 30_000 } = {}) {
  const nodes = [];
  const stop = async () => {
    for (const n of nodes) await n.stop('SIGKILL');
  };
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startRedisServer({
          // The bus port is claimed like any other (by default it is the node's port + 10000, which nobody claimed).
          extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', '--cluster-port', String(await freePort())],
        }),
      );
    }
    const cli = join(dirname(findRedisServer()), 'redis-cli');
    execFileSync(cli, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const deadline = Date.now() + timeoutMs;
    for (const n of nodes) {
      for (;;) {
        const info = execFileSync(cli, ['-p', String(n.port), 'cluster', 'info']).toString();
        if (info.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`the cluster did not become ok within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`, nodes, stop };
}
