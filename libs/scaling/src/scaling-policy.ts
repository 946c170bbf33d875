import { linearForecast } from './forecast.js';

export const SCALING_STRATEGIES = ['STATIC', 'STEPWISE', 'ADAPTIVE', 'PREDICTIVE', 'DEMAND'] as const;

/** DEMAND: a task's expected run time when the analyzer has no history for the pool yet. */
export const DEFAULT_TASK_MS = 1000;
export type ScalingStrategy = (typeof SCALING_STRATEGIES)[number];

/** One pool's limits and knobs, in milliseconds and task counts. */
export interface PoolPolicy {
  strategy: ScalingStrategy;
  minWorkers: number;
  maxWorkers: number;
  /** STEPWISE: scale up above this backlog, down below the low one. */
  queueThresholdHigh: number;
  queueThresholdLow: number;
  /** ADAPTIVE/PREDICTIVE: how many tasks (queued or running) one worker should carry. */
  targetBacklogPerWorker: number;
  scaleUpCooldownMs: number;
  scaleDownCooldownMs: number;
  /** A scale-down goes only as low as the highest recommendation within this window (no flapping). */
  scaleDownStabilizationMs: number;
  /** PREDICTIVE (and `predictive` on): how many samples ahead to forecast. */
  forecastHorizon: number;
  /** PREDICTIVE: how long a worker takes to become useful; the forecast looks this much further. */
  startupBufferMs: number;
  maxStepUp: number;
  maxStepDown: number;
  /** Also use the forecast (never below the present demand) for STEPWISE and ADAPTIVE. */
  predictive: boolean;
  /** How many samples of history to keep. */
  metricsWindow: number;
  /** Host guards: no scale-up while the host is this busy (percent). */
  cpuThresholdHigh?: number;
  memoryThresholdHigh?: number;
}

/** What the resource manager saw of a pool at one tick. */
export interface Observation {
  at: number;
  /** Waiting and prioritized tasks. */
  waiting: number;
  /** Delayed tasks (retries in backoff) that are due by the next tick. */
  delayedDue: number;
  /** Tasks being run. */
  active: number;
  /** Workers counted for the pool: running or starting, not draining. */
  current: number;
  /** Workers holding at least one task. */
  busy: number;
  hostCpuPercent?: number;
  hostMemoryPercent?: number;
  /** DEMAND: a task's expected run time in this pool (the analyzer's durations); DEFAULT_TASK_MS without. */
  expectedTaskMs?: number;
  /** DEMAND: how long a new worker takes to become ready, as measured; the policy's startup buffer without. */
  startupMs?: number;
  /** DEMAND: tasks one worker runs at once. */
  slotsPerWorker?: number;
}

export interface Sample {
  at: number;
  demand: number;
}

/** What the policy remembers between ticks; `decide` returns the next one and never mutates its input. */
export interface PolicyState {
  history: Sample[];
  recommendations: Array<{ at: number; desired: number }>;
  lastScaleUpAt?: number;
  lastScaleDownAt?: number;
  /** The last decision: workers lost below it (crashed, killed) are replaced without waiting for a cooldown. */
  lastDesired?: number;
}

export interface Decision {
  desired: number;
  action: 'up' | 'down' | 'hold';
  /** What the strategy asked for before cooldowns, stabilization and step limits. */
  recommended: number;
  reason: string;
}

export const initialPolicyState = (): PolicyState => ({ history: [], recommendations: [] });

const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, n));
const seconds = (ms: number) => `${Math.ceil(ms / 1000)}s`;

/** The strategy's recommendation, and why. */
function recommend(p: PoolPolicy, o: Observation, state: PolicyState, demand: number): { n: number; why: string } {
  const backlog = o.waiting + o.delayedDue;
  switch (p.strategy) {
    case 'STATIC':
      return { n: p.minWorkers, why: `static at min_workers ${p.minWorkers}` };
    case 'STEPWISE': {
      const seen = p.predictive ? Math.max(backlog, forecastDemand(p, state, o.at) - o.active) : backlog;
      if (seen > p.queueThresholdHigh) return { n: o.current + 1, why: `backlog ${Math.round(seen)} > queue_threshold_high ${p.queueThresholdHigh}` };
      if (seen < p.queueThresholdLow && o.busy < o.current) {
        return { n: o.current - 1, why: `backlog ${Math.round(seen)} < queue_threshold_low ${p.queueThresholdLow} with ${o.current - o.busy} idle` };
      }
      return { n: o.current, why: `backlog ${Math.round(seen)} within thresholds` };
    }
    case 'DEMAND': {
      const d = demandOf(p, o);
      // Never more workers than there are tasks to give them.
      const tasks = Math.ceil((o.waiting + o.delayedDue + o.active) / d.slots);
      const n = Math.min(tasks, Math.ceil(d.workSeconds / (d.slots * d.horizonSeconds) - 1e-9));
      return {
        n: Math.max(n, o.busy),
        why:
          `${d.workSeconds.toFixed(1)} s of work (${o.waiting + o.delayedDue} queued + ${o.active} running × ${(d.taskMs / 1000).toFixed(2)} s), ` +
          `${o.current - o.busy} idle of ${o.current}, start-up ${(d.startupMs / 1000).toFixed(1)} s → ${Math.max(n, o.busy)}`,
      };
    }
    case 'ADAPTIVE':
    case 'PREDICTIVE': {
      const usesForecast = p.strategy === 'PREDICTIVE' || p.predictive;
      const forecast = usesForecast ? forecastDemand(p, state, o.at) : demand;
      const basis = Math.max(demand, forecast);
      const n = Math.ceil(basis / p.targetBacklogPerWorker);
      const what = usesForecast && forecast > demand ? `forecast demand ${forecast.toFixed(1)} (now ${demand})` : `demand ${demand}`;
      return { n, why: `${what} / ${p.targetBacklogPerWorker} per worker → ${n}` };
    }
  }
}

/**
 * DEMAND's view of the work: queued tasks at their expected run time and running ones at half of it (on
 * average half done), in seconds; and the horizon it should be done within: a worker's start-up time (a worker
 * started now is of use only after it, so no more are started than would finish the work in that time).
 */
function demandOf(p: PoolPolicy, o: Observation) {
  const taskMs = o.expectedTaskMs ?? DEFAULT_TASK_MS;
  const startupMs = o.startupMs ?? p.startupBufferMs;
  const workSeconds = ((o.waiting + o.delayedDue) * taskMs + (o.active * taskMs) / 2) / 1000;
  return { taskMs, startupMs, workSeconds, slots: Math.max(1, o.slotsPerWorker ?? 1), horizonSeconds: Math.max(0.5, startupMs / 1000) };
}

/** Demand expected `forecastHorizon` samples plus the start-up buffer from now, by a least-squares trend. */
function forecastDemand(p: PoolPolicy, state: PolicyState, now: number): number {
  const h = state.history;
  if (h.length < 2) return h.at(-1)?.demand ?? 0;
  const step = ((h.at(-1) as Sample).at - h[0].at) / (h.length - 1);
  const at = now + p.forecastHorizon * step + p.startupBufferMs;
  return Math.max(
    0,
    linearForecast(
      h.map((s) => ({ at: s.at, value: s.demand })),
      at,
    ),
  );
}

/**
 * Decides how many workers a pool should have. Pure: the same policy, observation, state and pin give
 * the same decision. Order of rules: a pin wins; min/max always hold; an empty pool with work wakes at
 * once; otherwise the strategy recommends, a scale-up waits out its cooldown and the host guards, a
 * scale-down waits out its cooldown and goes no lower than the stabilization window allows, and each
 * tick moves by at most the step limits.
 */
export function decide(p: PoolPolicy, o: Observation, prev: PolicyState, pin?: number): { decision: Decision; state: PolicyState } {
  const demand = o.waiting + o.delayedDue + o.active;
  const history = [...prev.history, { at: o.at, demand }].slice(-p.metricsWindow);
  const state: PolicyState = { ...prev, history };
  const { n: raw, why } = recommend(p, o, state, demand);
  const recommended = clamp(raw, p.minWorkers, p.maxWorkers);
  const windowStart = o.at - (p.strategy === 'DEMAND' ? demandWindowMs(p, o) : p.scaleDownStabilizationMs);
  state.recommendations = [...prev.recommendations.filter((r) => r.at > windowStart), { at: o.at, desired: recommended }];

  const result = (desired: number, reason: string, replacing = false) => {
    const action = desired > o.current ? 'up' : desired < o.current ? 'down' : 'hold';
    if (action === 'up' && !replacing) state.lastScaleUpAt = o.at;
    if (action === 'down') state.lastScaleDownAt = o.at;
    state.lastDesired = desired;
    return { decision: { desired, action, recommended, reason }, state } as const;
  };

  if (pin !== undefined) return result(pin, `pinned at ${pin} by an operator`);
  if (o.current < p.minWorkers) return result(p.minWorkers, `below min_workers ${p.minWorkers}`);
  if (o.current > p.maxWorkers) return result(p.maxWorkers, `above max_workers ${p.maxWorkers}`);
  if (o.current === 0 && demand > 0 && p.maxWorkers > 0) {
    // A wake-up is not a step up: it starts no cooldown, so the burst that follows is met on the next tick.
    const cap = p.strategy === 'DEMAND' ? p.maxWorkers : Math.min(p.maxWorkers, p.maxStepUp);
    return result(clamp(Math.max(1, recommended), 1, cap), `waking: ${demand} task(s) and no worker`, true);
  }

  // The host guards hold every scale-up above min_workers, replacements of lost workers included.
  const hostBusy =
    p.cpuThresholdHigh !== undefined && (o.hostCpuPercent ?? 0) >= p.cpuThresholdHigh
      ? `host CPU ${Math.round(o.hostCpuPercent ?? 0)}% ≥ cpu_threshold_high ${p.cpuThresholdHigh}%`
      : p.memoryThresholdHigh !== undefined && (o.hostMemoryPercent ?? 0) >= p.memoryThresholdHigh
        ? `host memory ${Math.round(o.hostMemoryPercent ?? 0)}% ≥ memory_threshold_high ${p.memoryThresholdHigh}%`
        : undefined;

  if (recommended > o.current && prev.lastDesired !== undefined && o.current < prev.lastDesired) {
    const desired = Math.min(recommended, prev.lastDesired);
    const why = `replacing ${desired - o.current} lost worker(s) (decided ${prev.lastDesired})`;
    if (!hostBusy) return result(desired, why, true);
    // Held, not given up: the lost workers are still to be replaced once the host has room.
    const held = result(o.current, `${why}; holding: ${hostBusy}`, true);
    held.state.lastDesired = prev.lastDesired;
    return held;
  }

  const capped = raw > p.maxWorkers && recommended > o.current ? `, capped at max_workers ${p.maxWorkers}` : '';
  if (p.strategy === 'DEMAND') return decideDemand(p, o, state, recommended, why + capped, hostBusy, result);
  if (recommended > o.current) {
    const since = o.at - (prev.lastScaleUpAt ?? -Infinity);
    if (since < p.scaleUpCooldownMs)
      return result(o.current, `${why}${capped}; holding for scale_up_cooldown (${seconds(p.scaleUpCooldownMs - since)} left)`);
    if (hostBusy) return result(o.current, `${why}; holding: ${hostBusy}`);
    const desired = Math.min(recommended, o.current + p.maxStepUp);
    return result(desired, `${why}${capped}${desired < recommended ? `; step limited to +${p.maxStepUp}` : ''}`);
  }

  if (recommended < o.current) {
    const lastChange = Math.max(prev.lastScaleUpAt ?? -Infinity, prev.lastScaleDownAt ?? -Infinity);
    const since = o.at - lastChange;
    if (since < p.scaleDownCooldownMs)
      return result(o.current, `${why}; holding for scale_down_cooldown (${seconds(p.scaleDownCooldownMs - since)} left)`);
    const stable = Math.max(...state.recommendations.map((r) => r.desired));
    if (stable >= o.current)
      return result(o.current, `${why}; holding: stabilizing (recommended up to ${stable} within the last ${seconds(p.scaleDownStabilizationMs)})`);
    const desired = Math.max(stable, o.current - p.maxStepDown);
    return result(desired, `${why}${desired > stable ? `; step limited to -${p.maxStepDown}` : ''}`);
  }

  return result(o.current, why);
}

/** How long DEMAND holds workers after the work that needed them: the stabilization window, at least one start-up. */
export function demandWindowMs(p: PoolPolicy, o: Pick<Observation, 'startupMs'>): number {
  return Math.max(p.scaleDownStabilizationMs, o.startupMs ?? p.startupBufferMs);
}

/**
 * DEMAND: up at once to what the work needs (no cooldown, no step limit: within max_workers and the host
 * guards); down, to the highest need seen within the window (`demandWindowMs`), never below the workers that
 * hold tasks, all the idle ones it can spare at once. The window outlasts a start-up, so a worker is not
 * stopped when the arrivals of the last start-up time say another would be started within it. (Two start-ups
 * were measured too: the same waits, twice the idle tail.)
 */
function decideDemand(
  p: PoolPolicy,
  o: Observation,
  state: PolicyState,
  recommended: number,
  why: string,
  hostBusy: string | undefined,
  result: (desired: number, reason: string) => { decision: Decision; state: PolicyState },
): { decision: Decision; state: PolicyState } {
  const windowMs = demandWindowMs(p, o);
  if (recommended > o.current) return hostBusy ? result(o.current, `${why}; holding: ${hostBusy}`) : result(recommended, why);
  if (recommended < o.current) {
    const stable = Math.max(p.minWorkers, o.busy, ...state.recommendations.map((r) => r.desired));
    if (stable >= o.current) return result(o.current, `${why}; holding: needed up to ${stable} within the last ${seconds(windowMs)} (stabilization)`);
    return result(stable, `${why}; the last ${seconds(windowMs)} needed at most ${stable}: stopping ${o.current - stable} idle`);
  }
  return result(o.current, why);
}
