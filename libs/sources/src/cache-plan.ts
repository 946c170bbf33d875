import { createHash } from 'node:crypto';

/** A stable folder name for a repository: readable (host and path) and unique (a hash of the whole URL). */
export function repoKey(url: string): string {
  const u = new URL(url);
  const readable = `${u.host}${u.pathname}`
    .replace(/\.git$/, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(-60);
  return `${readable || 'repo'}-${createHash('sha256').update(url).digest('hex').slice(0, 12)}`;
}

/**
 * The folder of one commit's checkout: one per (repository, commit) on a host, shared by its workers. A pool
 * with a setup command gets a tree of its own per distinct command (`+<hash>`): a setup changes the tree it
 * runs in, so pools with other setups, or none, must not share it.
 */
export function checkoutName(url: string, sha: string, setup?: readonly string[]): string {
  const variant = setup ? `+${createHash('sha256').update(JSON.stringify(setup)).digest('hex').slice(0, 10)}` : '';
  return `${repoKey(url)}@${sha}${variant}`;
}

/** One checkout as the cache accounts for it. */
export interface CachedCheckout {
  name: string;
  bytes: number;
  /** Last time a task took or gave back a lease on it (ms). */
  lastUsed: number;
  /** A task holds it now. */
  inUse: boolean;
}

/**
 * Which checkouts to remove so the cache fits `budgetBytes`: the least recently used first, never one in use.
 * When the checkouts in use alone exceed the budget, every other one goes and the cache stays over budget
 * until they are given back (a task's tree is never taken from under it).
 */
export function chooseEvictions(checkouts: readonly CachedCheckout[], budgetBytes: number): string[] {
  let total = checkouts.reduce((n, c) => n + c.bytes, 0);
  const out: string[] = [];
  for (const c of [...checkouts].sort((a, b) => a.lastUsed - b.lastUsed || a.name.localeCompare(b.name))) {
    if (total <= budgetBytes) break;
    if (c.inUse) continue;
    out.push(c.name);
    total -= c.bytes;
  }
  return out;
}
