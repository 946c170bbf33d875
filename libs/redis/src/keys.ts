/**
 * How a fleet's keys sit on a Redis Cluster (`FLEET_SPREAD`): `none`, every key under the prefix's one hash
 * tag (one slot); `pools`, each pool's queue keys under a hash tag of their own (`{name:pool}`), so pools
 * spread over the cluster's masters while the fleet's own keys keep the prefix's slot.
 */
export type FleetSpread = 'none' | 'pools';

/**
 * Every Redis key and stream name of a fleet, built from one prefix. BullMQ's queues live under
 * `<prefix>:q:<pool>:…` (spread: `{name:pool}:q:<pool>:…`); the fleet's own keys sit beside them and can
 * never collide with a queue's, whatever a pool is called. Deleting what `everything` matches removes a
 * fleet completely.
 */
export class FleetKeys {
  /** The hash tag's name when the prefix is one (`{name}`). */
  private readonly tag: string | undefined;

  constructor(
    readonly prefix: string,
    readonly spread: FleetSpread = 'none',
  ) {
    // `{name}` is a hash tag: on a Redis Cluster every key of the fleet then hashes to one slot.
    const m = /^(?:[A-Za-z0-9_-]{1,64}|\{([A-Za-z0-9_-]{1,64})\})$/.exec(prefix);
    if (!m) throw new RangeError(`invalid key prefix "${prefix}"`);
    this.tag = m[1];
    if (spread === 'pools' && this.tag === undefined) throw new RangeError(`spreading pools needs a hash-tag prefix ({name}), not "${prefix}"`);
  }

  /** The `prefix` option for a pool's BullMQ Queue and Worker. */
  queuePrefix(pool: string): string {
    return this.spread === 'pools' ? `{${this.tag as string}:${pool}}:q` : `${this.prefix}:q`;
  }

  /**
   * Patterns matching every key of this fleet, for SCAN. A hash-tag prefix also covers spread pools' keys
   * (`{name:…`, which no other prefix can start with: a prefix holds no `:`).
   */
  get everything(): string[] {
    return this.tag === undefined ? [`${this.prefix}:*`] : [`${this.prefix}:*`, `{${this.tag}:*`];
  }

  /** How this fleet's keys are laid out (`FLEET_SPREAD`), recorded by the first app that opens the fleet. */
  get layout(): string {
    return `${this.prefix}:layout`;
  }

  /** Hash of one live worker (pool, pid, host, capabilities, current tasks); expires unless heartbeats renew it. */
  worker(workerId: string): string {
    return `${this.prefix}:worker:${workerId}`;
  }

  /** Sorted set of worker ids scored by last heartbeat (ms); entries whose hash expired are pruned on read. */
  get workerIndex(): string {
    return `${this.prefix}:workers`;
  }

  /** Stream of timing events, one per finished attempt. */
  get timings(): string {
    return `${this.prefix}:timings`;
  }

  /** Sorted set of idempotency claims' key names by when they were committed (the count bound, `trimIndex`). */
  get claims(): string {
    return `${this.prefix}:idem-index`;
  }

  /** Sorted set of cancelled tasks' record key names by when they were cancelled (the count bound). */
  get cancelledIndex(): string {
    return `${this.prefix}:cancelled-index`;
  }

  /** Task id already created for a client's idempotency key (keys are per client). */
  idempotency(client: string, key: string): string {
    return `${this.prefix}:idem:${client}:${key}`;
  }

  /**
   * Ids of the tasks a client queued in a pool and that may still wait (for the per-client cap). It lives
   * beside the pool's queue keys (one hash slot per queue, on a cluster).
   */
  queuedBy(pool: string, client: string): string {
    return `${this.queuePrefix(pool)}:${pool}:queued-by:${client}`;
  }

  /** One of a pool's BullMQ keys (`prioritized`, `delayed`, `waiting-children`, …). */
  queueKey(pool: string, type: string): string {
    return `${this.queuePrefix(pool)}:${pool}:${type}`;
  }

  /**
   * Hash batch id → a batch whose pools are queued in transactions of their own (spread pools): written with
   * its idempotency claims before any pool's part, deleted once every part is queued. What a failure leaves
   * here is queued whole later (see the coordinator's `SpreadBatches`).
   */
  get pendingBatches(): string {
    return `${this.prefix}:batches:pending`;
  }

  /** Marks, in a pool's slot, that a pending batch's part for the pool is queued (so it is never queued twice). */
  batchPart(pool: string, batchId: string): string {
    return `${this.queuePrefix(pool)}:${pool}:batch:${batchId}`;
  }

  /** Record of a cancelled task (BullMQ forgets a removed job; clients still ask for it). */
  cancelled(taskId: string): string {
    return `${this.prefix}:cancelled:${taskId}`;
  }

  /** Lease held by the acting resource manager. */
  get managerLease(): string {
    return `${this.prefix}:rm:lease`;
  }

  /** Hash host id → the host's last beat (JSON): slots, pools it may run and their limits, its workers. */
  get hosts(): string {
    return `${this.prefix}:rm:hosts`;
  }

  /** Hash host id → its quotas (JSON pool → workers), written by the lease holder. */
  get quotas(): string {
    return `${this.prefix}:rm:quotas`;
  }

  /** Hash pool → pinned worker count, set by operators; survives resource-manager restarts. */
  get pins(): string {
    return `${this.prefix}:rm:pins`;
  }

  /** Stream of scaling decisions. */
  get decisions(): string {
    return `${this.prefix}:rm:decisions`;
  }

  /** Stream of alerts raised and cleared by the trend analyzer. */
  get alerts(): string {
    return `${this.prefix}:alerts`;
  }

  /** Hash of a run: its name, client, labels, options, when it was created and cancelled. */
  run(runId: string): string {
    return `${this.prefix}:run:${runId}`;
  }

  /** Held by the request creating a run with an idempotency key, so a racing request waits for it instead of creating it again. */
  runClaim(runId: string): string {
    return `${this.prefix}:run:${runId}:claim`;
  }

  /** Hash of a run's tasks: key (a test file, or an extra task's key) → the task's id, pool, dependencies, state. */
  runTasks(runId: string): string {
    return `${this.prefix}:run:${runId}:tasks`;
  }

  /** Hash of a run's attempts, written by workers: `<attempt>:<key>` → what the attempt did (and its test cases). */
  runAttempts(runId: string): string {
    return `${this.prefix}:run:${runId}:attempts`;
  }

  /** Hash of the test cases each attempt's JUnit report held (`<attempt>:<key>` → cases), apart from the attempts for cheap progress reads. */
  runCases(runId: string): string {
    return `${this.prefix}:run:${runId}:cases`;
  }

  /** Hash of a CI build's nodes: node name → when it last asked for work or renewed a file (ms). */
  runNodes(runId: string): string {
    return `${this.prefix}:run:${runId}:nodes`;
  }

  /** Sorted set of finished CI builds' runs by when they finished: their queues are removed a while after. */
  get ciQueuesToDrop(): string {
    return `${this.prefix}:ci-queues-to-drop`;
  }

  /** Sorted set of runs by creation time (the recent ones, for listing). */
  get runs(): string {
    return `${this.prefix}:runs`;
  }

  /** Sorted set of finished runs by when they finished (the count bound: the oldest go first). */
  get finishedRuns(): string {
    return `${this.prefix}:runs:finished`;
  }

  /**
   * Stream of runs whose task just had its last attempt (field `run`, and `finals`), written with that attempt's
   * record when it can change anything (a run with dependents, a build's, a cancelled one, or its last file): the
   * coordinators read it to release dependents and finalize the run then, not on their next tick. Capped near 1,000.
   */
  get runNews(): string {
    return `${this.prefix}:runs:news`;
  }

  /** Set of runs still in progress (dependencies to release, results to finalize). */
  get activeRuns(): string {
    return `${this.prefix}:runs:active`;
  }

  /** Hash of flakiness per test (`file` or `file::case`) across runs: runs seen, runs flaky, last seen. */
  get flaky(): string {
    return `${this.prefix}:flaky`;
  }

  /** Sorted set of the flaky index's tests by when a run last saw them (the count bound: the least recent go). */
  get flakySeen(): string {
    return `${this.prefix}:flaky:seen`;
  }

  /** Set of the flaky index's tests that have been flaky at least once (what `GET /flaky` reads). */
  get flakyTests(): string {
    return `${this.prefix}:flaky:tests`;
  }

  /** Hash of quarantined tests → who quarantined them, when, why. */
  get quarantine(): string {
    return `${this.prefix}:quarantine`;
  }

  /** Hash `<pool>|<test file>` → expected duration (ms), kept by the trend analyzer from timing events. */
  get testDurations(): string {
    return `${this.prefix}:ta:durations`;
  }

  /** The trend analyzer's series: `<prefix>:ta:s:<series>` is one series' sample list (see analyzerSeriesPrefix). */
  analyzerSeries(series: string): string {
    return `${this.analyzerSeriesPrefix}${series}`;
  }

  /** What every series list's key starts with (the commit script builds them from it). */
  get analyzerSeriesPrefix(): string {
    return `${this.prefix}:ta:s:`;
  }

  /** Set of the analyzer's series names. */
  get analyzerSeriesIndex(): string {
    return `${this.prefix}:ta:series`;
  }

  /** Hash of series name → samples ever appended to it: the analysis reads again only the series whose count moved. */
  get analyzerSeriesVersions(): string {
    return `${this.prefix}:ta:versions`;
  }

  /**
   * What a series' counts list's key starts with: the rows of each element of its sample list, kept by analyzers
   * before the held record. Read by none now: deleted at the series' first trim (see KEEP_WINDOW).
   */
  get analyzerSeriesCountsPrefix(): string {
    return `${this.prefix}:ta:n:`;
  }

  /**
   * Hash of series name → `<rows held> <version>` at the list's last trim (an element holds one row or several):
   * with the version now, the rows it holds, what keeps the list to its window. A plain count (analyzers before)
   * or none: the rows are counted from the list.
   */
  get analyzerSeriesHeld(): string {
    return `${this.prefix}:ta:held`;
  }

  /** Hash of the analyzer's event counters (per outcome and pool). */
  get analyzerCounters(): string {
    return `${this.prefix}:ta:counters`;
  }

  /** Hash of the alerts in force, by series. */
  get analyzerActiveAlerts(): string {
    return `${this.prefix}:ta:alerts:active`;
  }

  /** Hash of gaps the analyzer saw in the stream (trimmed before it read them). */
  get analyzerGaps(): string {
    return `${this.prefix}:ta:gaps`;
  }

  /** What an attempt's "counted once" marker key starts with (`…<task id>:<attempt>`, with a TTL). */
  get analyzerSeenPrefix(): string {
    return `${this.prefix}:ta:seen:`;
  }

  /** The claim of one rate period by one analyzer (so several analyzers record each period once). */
  analyzerPeriod(period: number): string {
    return `${this.prefix}:ta:period:${period}`;
  }

  /** One client's request counter in the current rate-limit window. */
  rateLimit(client: string): string {
    return `${this.prefix}:rl:${client}`;
  }

  /** Consumer group of the trend analyzers on the timings stream (a group name, not a key). */
  get analyzerGroup(): string {
    return 'trend-analyzer';
  }
}
