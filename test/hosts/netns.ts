import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * Hosts as Linux network namespaces: each gets a veth pair whose other end stays in this (the test's)
 * namespace, with a /24 of its own, so a server bound to the near ends is reached from every host over its
 * own link, and a link can be cut. Needs root and `ip` (iproute2); `netnsUnavailable()` says why not.
 */
export interface NetnsHost {
  ns: string;
  /** The host's address, and the address of the server side of its link. */
  address: string;
  gateway: string;
  /** The interface inside the host's namespace. */
  ifname: string;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** Why namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: ip netns needs root';
  const name = `flprobe${randomBytes(3).toString('hex')}`;
  const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `ip netns add failed: ${r.error?.message ?? r.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', name]);
  return undefined;
}

/** A free 10.N.0.0/16 (no address or route of this machine inside it). */
function freeSubnet(): number {
  const used = ip('-4', 'route') + ip('-4', 'addr');
  for (let tries = 0; tries < 100; tries++) {
    const n = 100 + Math.floor(Math.random() * 150);
    if (!used.includes(`10.${n}.`)) return n;
  }
  throw new Error('no free 10.N.0.0/16 subnet for the test namespaces');
}

export function makeHosts(count: number): { hosts: NetnsHost[]; remove: () => void } {
  const tag = randomBytes(2).toString('hex');
  const net = freeSubnet();
  const hosts: NetnsHost[] = [];
  const remove = () => {
    for (const h of hosts) spawnSync('ip', ['netns', 'del', h.ns]);
  };
  try {
    for (let i = 1; i <= count; i++) {
      const ns = `fl${tag}h${i}`;
      const near = `fl${tag}n${i}`;
      const far = `fl${tag}f${i}`;
      const h: NetnsHost = { ns, address: `10.${net}.${i}.2`, gateway: `10.${net}.${i}.1`, ifname: far };
      ip('netns', 'add', ns);
      hosts.push(h);
      ip('link', 'add', near, 'type', 'veth', 'peer', 'name', far);
      ip('link', 'set', far, 'netns', ns);
      ip('addr', 'add', `${h.gateway}/24`, 'dev', near);
      ip('link', 'set', near, 'up');
      ip('-n', ns, 'addr', 'add', `${h.address}/24`, 'dev', far);
      ip('-n', ns, 'link', 'set', far, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  } catch (err) {
    remove();
    throw err;
  }
  return { hosts, remove };
}

/** Cuts a host off: its end of the link goes down. */
export function cutOff(h: NetnsHost): void {
  ip('-n', h.ns, 'link', 'set', h.ifname, 'down');
}

/**
 * One address every host reaches the same way (a server's public name, as a git server has): added to this
 * namespace's loopback, with a route to it over each host's own link. No forwarding is involved: the address
 * is local here. `remove` takes it away again.
 */
export function sharedAddress(hosts: readonly NetnsHost[]): { address: string; remove: () => void } {
  const net = hosts[0].gateway.split('.')[1];
  const address = `10.${net}.250.1`;
  ip('addr', 'add', `${address}/32`, 'dev', 'lo');
  const remove = () => void spawnSync('ip', ['addr', 'del', `${address}/32`, 'dev', 'lo']);
  try {
    for (const h of hosts) ip('-n', h.ns, 'route', 'add', `${address}/32`, 'via', h.gateway);
  } catch (err) {
    remove();
    throw err;
  }
  return { address, remove };
}

/** A fleet app started inside a host's namespace (`ip netns exec` execs node: the child's PID is the app's own). */
export interface HostProcess {
  child: ChildProcess;
  exited: Promise<unknown>;
  output: string[];
}

export function startInHost(h: NetnsHost, entry: string, args: string[], env: Record<string, string>): HostProcess {
  const child = spawn('ip', ['netns', 'exec', h.ns, process.execPath, entry, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  for (const s of [child.stdout, child.stderr]) s.on('data', (b: Buffer) => output.push(b.toString()));
  return { child, exited: new Promise((r) => child.once('exit', r)), output };
}

/** SIGTERM to each, SIGKILL to those still there after `graceMs`. */
export async function stopAll(procs: readonly HostProcess[], graceMs: number): Promise<void> {
  const running = (p: HostProcess) => p.child.exitCode === null && p.child.signalCode === null;
  for (const p of procs) if (running(p)) p.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
  clearTimeout(timer);
  for (const p of procs) if (running(p)) p.child.kill('SIGKILL');
}
