/**
 * How a pool's desired size is shared among hosts. Pure: the lease holder calls it every tick with what the
 * hosts reported and what the registry shows; each host's manager then starts or stops its own workers to
 * meet its quota.
 */

/** A live host as the lease holder sees it for one pool. */
export interface HostForPool {
  id: string;
  /** Most workers of this pool the host may run (0: not this pool). */
  limit: number;
  /** Slots the host offers (its CPUs unless configured), and slots its quotas of other pools already use: they weigh the spread. */
  slots: number;
  usedByOtherPools: number;
  /** Slots one worker of this pool takes (the template's CPU count, at least 1). */
  cost: number;
  /** The quota it has now, and its live workers of this pool (draining ones included). */
  quota: number;
  live: number;
}

export interface QuotaInput {
  desired: number;
  maxWorkers: number;
  hosts: readonly HostForPool[];
  /** Live workers of this pool that belong to no live host (started by hand, or on a host that is gone). */
  unowned: number;
}

export interface QuotaResult {
  /** Host id → quota. */
  quotas: Record<string, number>;
  /** Workers wanted but not placed: no host with room, or max_workers would be passed while others drain. */
  unplaced: number;
}

const free = (h: HostForPool, q: number) => h.slots - h.usedByOtherPools - q * h.cost;

/**
 * Spreads `desired` over the hosts: existing quotas are kept where they still fit (no churn), what is missing
 * goes one worker at a time to the host with the most free slots (within its limit), what is too much is
 * taken from the host with the fewest free slots. Slots weigh the spread; they do not cap it (a host whose
 * slots are all taken still gets workers up to its limit when no other host has room): the hard bounds are
 * each host's limit for the pool and `maxWorkers`.
 *
 * Then the fleet-wide bound. A host may have up to max(its live workers, its current quota) workers (it
 * starts up to its quota between two of our reads), and a lowered quota frees nothing until the host has
 * stopped down to it. So a raise is granted only as far as that sum over hosts, plus the workers no live
 * host owns, stays within `maxWorkers`: a quota that moves from one host to another arrives once the first
 * host's workers are gone, never before.
 */
export function assignQuotas(input: QuotaInput): QuotaResult {
  const hosts = [...input.hosts].filter((h) => h.limit > 0).sort((a, b) => a.id.localeCompare(b.id));
  const target = new Map(hosts.map((h) => [h.id, Math.min(h.quota, h.limit)]));
  const t = (h: HostForPool) => target.get(h.id) ?? 0;
  const want = Math.max(0, Math.min(input.desired, input.maxWorkers));
  let total = hosts.reduce((s, h) => s + t(h), 0);
  while (total > want) {
    const from = hosts.filter((h) => t(h) > 0).sort((a, b) => free(a, t(a)) - free(b, t(b)))[0];
    if (!from) break;
    target.set(from.id, t(from) - 1);
    total--;
  }
  while (total < want) {
    const to = hosts.filter((h) => t(h) < h.limit).sort((a, b) => free(b, t(b)) - free(a, t(a)))[0];
    if (!to) break;
    target.set(to.id, t(to) + 1);
    total++;
  }
  const base = (h: HostForPool) => Math.max(h.live, h.quota);
  let committed = input.unowned + hosts.reduce((s, h) => s + base(h), 0);
  const quotas: Record<string, number> = {};
  for (const h of hosts) if (t(h) <= h.quota) quotas[h.id] = t(h);
  for (const h of [...hosts].filter((x) => t(x) > x.quota).sort((a, b) => free(b, a.quota) - free(a, b.quota))) {
    const q = Math.max(h.quota, Math.min(t(h), base(h) + input.maxWorkers - committed));
    quotas[h.id] = q;
    committed += Math.max(0, q - base(h));
  }
  const placed = Object.values(quotas).reduce((s, n) => s + n, 0);
  return { quotas, unplaced: Math.max(0, want - placed) };
}
