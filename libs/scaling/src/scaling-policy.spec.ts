import { linearForecast } from './forecast.js';
import { decide, initialPolicyState, type Observation, type PolicyState, type PoolPolicy } from './scaling-policy.js';

const S = 1000;
const base: PoolPolicy = {
  strategy: 'ADAPTIVE',
  minWorkers: 1,
  maxWorkers: 8,
  queueThresholdHigh: 10,
  queueThresholdLow: 2,
  targetBacklogPerWorker: 4,
  scaleUpCooldownMs: 0,
  scaleDownCooldownMs: 0,
  scaleDownStabilizationMs: 0,
  forecastHorizon: 3,
  startupBufferMs: 0,
  maxStepUp: 100,
  maxStepDown: 100,
  predictive: false,
  metricsWindow: 30,
};
const obs = (o: Partial<Observation>): Observation => ({ at: 100 * S, waiting: 0, delayedDue: 0, active: 0, current: 1, busy: 0, ...o });

interface Case {
  name: string;
  policy?: Partial<PoolPolicy>;
  state?: Partial<PolicyState>;
  pin?: number;
  o: Partial<Observation>;
  desired: number;
  reason: RegExp;
}

const cases: Case[] = [
  // STATIC
  {
    name: 'STATIC stays at min whatever the queue',
    policy: { strategy: 'STATIC', minWorkers: 2 },
    o: { current: 2, waiting: 500 },
    desired: 2,
    reason: /static at min_workers 2/,
  },
  {
    name: 'STATIC below min comes up to min',
    policy: { strategy: 'STATIC', minWorkers: 3 },
    o: { current: 1 },
    desired: 3,
    reason: /below min_workers 3/,
  },
  // STEPWISE
  {
    name: 'STEPWISE adds one above the high threshold',
    policy: { strategy: 'STEPWISE' },
    o: { current: 2, waiting: 11 },
    desired: 3,
    reason: /backlog 11 > queue_threshold_high 10/,
  },
  {
    name: 'STEPWISE counts due retries as backlog',
    policy: { strategy: 'STEPWISE' },
    o: { current: 2, waiting: 6, delayedDue: 6 },
    desired: 3,
    reason: /backlog 12/,
  },
  {
    name: 'STEPWISE holds between the thresholds',
    policy: { strategy: 'STEPWISE' },
    o: { current: 3, waiting: 5 },
    desired: 3,
    reason: /within thresholds/,
  },
  {
    name: 'STEPWISE removes one idle worker below the low threshold',
    policy: { strategy: 'STEPWISE' },
    o: { current: 3, waiting: 1, busy: 1 },
    desired: 2,
    reason: /< queue_threshold_low 2 with 2 idle/,
  },
  {
    name: 'STEPWISE keeps busy workers',
    policy: { strategy: 'STEPWISE' },
    o: { current: 3, waiting: 0, active: 3, busy: 3 },
    desired: 3,
    reason: /within thresholds/,
  },
  // ADAPTIVE
  {
    name: 'ADAPTIVE sizes to demand / target per worker',
    o: { current: 1, waiting: 18, active: 4 },
    desired: 6,
    reason: /demand 22 \/ 4 per worker → 6/,
  },
  { name: 'ADAPTIVE caps at max_workers', o: { current: 2, waiting: 1000 }, desired: 8, reason: /capped at max_workers 8/ },
  { name: 'ADAPTIVE respects the step limit', policy: { maxStepUp: 2 }, o: { current: 2, waiting: 100 }, desired: 4, reason: /step limited to \+2/ },
  { name: 'ADAPTIVE scales down to what demand needs', o: { current: 6, active: 4, busy: 4 }, desired: 1, reason: /demand 4/ },
  { name: 'ADAPTIVE never goes under min', policy: { minWorkers: 2 }, o: { current: 5 }, desired: 2, reason: /demand 0/ },
  // cooldowns
  {
    name: 'a scale-up waits out its cooldown',
    policy: { scaleUpCooldownMs: 30 * S },
    state: { lastScaleUpAt: 90 * S },
    o: { current: 2, waiting: 40 },
    desired: 2,
    reason: /scale_up_cooldown \(20s left\)/,
  },
  {
    name: 'a scale-up after its cooldown goes ahead',
    policy: { scaleUpCooldownMs: 30 * S },
    state: { lastScaleUpAt: 60 * S },
    o: { current: 2, waiting: 40 },
    desired: 8,
    reason: /demand 40/,
  },
  {
    name: 'a scale-down waits out its cooldown after a scale-up',
    policy: { scaleDownCooldownMs: 60 * S },
    state: { lastScaleUpAt: 70 * S },
    o: { current: 5 },
    desired: 5,
    reason: /scale_down_cooldown \(30s left\)/,
  },
  { name: 'a scale-down respects its step limit', policy: { maxStepDown: 1 }, o: { current: 5 }, desired: 4, reason: /step limited to -1/ },
  // stabilization
  {
    name: 'a scale-down goes no lower than the window’s highest recommendation',
    policy: { scaleDownStabilizationMs: 60 * S },
    state: {
      recommendations: [
        { at: 30 * S, desired: 7 },
        { at: 70 * S, desired: 3 },
      ],
    },
    o: { current: 5 },
    desired: 3,
    reason: /demand 0/,
  },
  {
    name: 'a scale-down holds while the window still recommends as many',
    policy: { scaleDownStabilizationMs: 60 * S },
    state: { recommendations: [{ at: 80 * S, desired: 6 }] },
    o: { current: 5, active: 4 },
    desired: 5,
    reason: /stabilizing \(recommended up to 6/,
  },
  // pins, min/max
  { name: 'a pin wins over the queue', pin: 2, o: { current: 2, waiting: 1000 }, desired: 2, reason: /pinned at 2 by an operator/ },
  { name: 'a pin may go under min (an operator stops a pool)', pin: 0, o: { current: 3 }, desired: 0, reason: /pinned at 0/ },
  {
    name: 'a pin ignores cooldowns',
    pin: 6,
    policy: { scaleUpCooldownMs: 600 * S },
    state: { lastScaleUpAt: 99 * S },
    o: { current: 1 },
    desired: 6,
    reason: /pinned/,
  },
  { name: 'above max (config lowered) comes down at once', policy: { maxWorkers: 3 }, o: { current: 6 }, desired: 3, reason: /above max_workers 3/ },
  // scale to zero and wake
  { name: 'min 0: an idle pool scales to zero', policy: { minWorkers: 0 }, o: { current: 2 }, desired: 0, reason: /demand 0/ },
  {
    name: 'min 0: the first task wakes the pool, cooldown or not',
    policy: { minWorkers: 0, scaleUpCooldownMs: 600 * S },
    state: { lastScaleUpAt: 99 * S },
    o: { current: 0, waiting: 1 },
    desired: 1,
    reason: /waking: 1 task/,
  },
  {
    name: 'min 0: a burst wakes the pool as large as the step allows',
    policy: { minWorkers: 0, maxStepUp: 3 },
    o: { current: 0, waiting: 50 },
    desired: 3,
    reason: /waking: 50 task/,
  },
  { name: 'min 0 and max 0: nothing wakes', policy: { minWorkers: 0, maxWorkers: 0 }, o: { current: 0, waiting: 5 }, desired: 0, reason: /demand 5/ },
  // lost workers
  {
    name: 'a lost worker is replaced at once, cooldown or not',
    policy: { scaleUpCooldownMs: 600 * S },
    state: { lastScaleUpAt: 99 * S, lastDesired: 4 },
    o: { current: 3, waiting: 40 },
    desired: 4,
    reason: /replacing 1 lost worker/,
  },
  // host guards
  {
    name: 'no scale-up while the host CPU is saturated',
    policy: { cpuThresholdHigh: 80 },
    o: { current: 2, waiting: 40, hostCpuPercent: 95 },
    desired: 2,
    reason: /host CPU 95% ≥ cpu_threshold_high 80%/,
  },
  {
    name: 'no scale-up while host memory is short',
    policy: { memoryThresholdHigh: 90 },
    o: { current: 2, waiting: 40, hostMemoryPercent: 91 },
    desired: 2,
    reason: /host memory 91%/,
  },
  {
    name: 'a lost worker is not replaced while the host CPU is saturated',
    policy: { cpuThresholdHigh: 80 },
    state: { lastDesired: 4 },
    o: { current: 3, waiting: 40, hostCpuPercent: 95 },
    desired: 3,
    reason: /replacing 1 lost worker.*holding: host CPU 95% ≥ cpu_threshold_high 80%/,
  },
  {
    name: 'a lost worker is not replaced while host memory is short',
    policy: { memoryThresholdHigh: 90 },
    state: { lastDesired: 4 },
    o: { current: 3, waiting: 40, hostMemoryPercent: 93 },
    desired: 3,
    reason: /replacing 1 lost worker.*holding: host memory 93%/,
  },
];

describe('decide', () => {
  it('replaces lost workers once the host guard that held them is satisfied again', () => {
    const policy = { ...base, cpuThresholdHigh: 80, scaleUpCooldownMs: 600 * S };
    const state = { ...initialPolicyState(), lastScaleUpAt: 99 * S, lastDesired: 4 };
    const held = decide(policy, obs({ current: 3, waiting: 40, hostCpuPercent: 95 }), state);
    expect(held.decision.desired).toBe(3);
    const after = decide(policy, obs({ current: 3, waiting: 40, hostCpuPercent: 30, at: 102 * S }), held.state);
    expect(after.decision).toMatchObject({ desired: 4, reason: expect.stringMatching(/replacing 1 lost worker/) });
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const { decision } = decide({ ...base, ...c.policy }, obs(c.o), { ...initialPolicyState(), ...c.state }, c.pin);
    expect(decision.desired).toBe(c.desired);
    expect(decision.reason).toMatch(c.reason);
    expect(decision.action).toBe(c.desired > (c.o.current ?? 1) ? 'up' : c.desired < (c.o.current ?? 1) ? 'down' : 'hold');
  });

  it('has at least 20 cases', () => expect(cases.length).toBeGreaterThanOrEqual(20));

  /** Runs a policy over a series of demands, feeding each decision back as the next `current`. */
  const simulate = (policy: Partial<PoolPolicy>, demands: number[], start = 1, tickMs = 5 * S) => {
    let state = initialPolicyState();
    let current = start;
    const sizes: number[] = [];
    demands.forEach((waiting, i) => {
      const r = decide({ ...base, ...policy }, obs({ at: i * tickMs, waiting, current }), state);
      state = r.state;
      current = r.decision.desired;
      sizes.push(current);
    });
    return sizes;
  };

  it('PREDICTIVE starts workers ahead of a ramp that ADAPTIVE only follows', () => {
    const ramp = [0, 4, 8, 12, 16, 20, 24, 28];
    const adaptive = simulate({ strategy: 'ADAPTIVE', maxWorkers: 20 }, ramp);
    const predictive = simulate({ strategy: 'PREDICTIVE', maxWorkers: 20, forecastHorizon: 3, startupBufferMs: 5 * S }, ramp);
    expect(adaptive).toEqual([1, 1, 2, 3, 4, 5, 6, 7]);
    for (let i = 2; i < ramp.length; i++) expect(predictive[i]).toBeGreaterThan(adaptive[i]);
  });

  it('enable_predictive_scaling lets ADAPTIVE use the forecast too', () => {
    const ramp = [0, 4, 8, 12, 16];
    expect(simulate({ predictive: true, forecastHorizon: 2, maxWorkers: 20 }, ramp).at(-1)).toBeGreaterThan(
      simulate({ maxWorkers: 20 }, ramp).at(-1) as number,
    );
  });

  it('does not flap on a noisy queue', () => {
    const noisy = [20, 4, 22, 2, 18, 6, 24, 0, 20, 3, 21, 5, 19, 1, 23, 4];
    const unstable = simulate({}, noisy);
    const stable = simulate({ scaleDownStabilizationMs: 30 * S }, noisy);
    const changes = (xs: number[]) => xs.slice(1).filter((x, i) => x !== xs[i]).length;
    expect(changes(unstable)).toBeGreaterThan(10);
    expect(changes(stable)).toBeLessThanOrEqual(2);
    expect(Math.min(...stable.slice(2))).toBe(Math.max(...stable));
  });

  it('returns to min after a spike once the stabilization window has passed', () => {
    const sizes = simulate({ minWorkers: 1, scaleDownStabilizationMs: 20 * S, maxStepDown: 2 }, [40, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(sizes.slice(0, 2)).toEqual([8, 8]);
    expect(sizes.slice(2, 5)).toEqual([8, 8, 8]);
    expect(sizes.at(-1)).toBe(1);
  });

  it('keeps history within metrics_window and does not mutate its input', () => {
    const before = initialPolicyState();
    let state = before;
    for (let i = 0; i < 50; i++) state = decide({ ...base, metricsWindow: 10 }, obs({ at: i * S, waiting: i }), state).state;
    expect(state.history).toHaveLength(10);
    expect(before).toEqual({ history: [], recommendations: [] });
    expect(state.lastDesired).toBeDefined();
  });
});

describe('DEMAND: work in expected seconds, wake without blocking, stabilized scale-down of idle workers', () => {
  const demand: PoolPolicy = {
    ...base,
    strategy: 'DEMAND',
    minWorkers: 0,
    maxWorkers: 6,
    scaleUpCooldownMs: 10 * S,
    scaleDownCooldownMs: 20 * S,
    scaleDownStabilizationMs: 4 * S,
    startupBufferMs: 2 * S,
    maxStepUp: 1,
    maxStepDown: 1,
  };
  const at = (t: number, o: Partial<Observation>) => obs({ at: t * S, expectedTaskMs: 1000, startupMs: 2 * S, ...o });

  it.each([
    // 20 queued tasks of 1 s, workers useful after 2 s: 10 workers would finish it in 2 s, capped at 6.
    ['a backlog in seconds, capped at max_workers', { current: 1, busy: 1, active: 1, waiting: 20 }, 6],
    // 2 queued short tasks: the running worker finishes them before a new one could start.
    ['work shorter than a start-up needs no new worker', { current: 1, busy: 1, active: 1, waiting: 2, expectedTaskMs: 300 }, 1],
    // The same count of long tasks does need workers: seconds, not counts.
    ['the same count of long tasks does: a worker for each', { current: 1, busy: 1, active: 1, waiting: 2, expectedTaskMs: 10_000 }, 3],
    ['two slots per worker need half the workers', { current: 1, busy: 1, active: 1, waiting: 10, slotsPerWorker: 2 }, 3],
    ['never below the workers that hold tasks', { current: 4, busy: 4, active: 4, waiting: 0 }, 4],
    ['never more workers than tasks, however long they are', { current: 0, waiting: 1, expectedTaskMs: 60_000 }, 1],
  ])('%s', (_name, o, desired) => {
    expect(decide(demand, at(100, o), initialPolicyState()).decision.desired).toBe(desired);
  });

  it('a wake-up starts no cooldown: the burst that lands next tick is met at once, beyond max_step_up', () => {
    const woke = decide(demand, at(100, { current: 0, busy: 0, waiting: 1 }), initialPolicyState());
    expect(woke.decision).toMatchObject({ desired: 1, reason: expect.stringMatching(/waking/) });
    const burst = decide(demand, at(101, { current: 1, busy: 1, active: 1, waiting: 40 }), woke.state);
    expect(burst.decision).toMatchObject({ desired: 6, action: 'up' });
    // The seed's strategies keep their cooldown after a real step up, but not after a wake-up either.
    const adaptive = { ...demand, strategy: 'ADAPTIVE' as const, maxStepUp: 10 };
    const w2 = decide(adaptive, at(100, { current: 0, waiting: 1 }), initialPolicyState());
    expect(decide(adaptive, at(101, { current: 1, busy: 1, active: 1, waiting: 40 }), w2.state).decision.action).toBe('up');
  });

  it('back to min_workers within one window after the queue empties, all idle workers at once, not one per cooldown', () => {
    let state = decide(demand, at(100, { current: 6, busy: 6, active: 6, waiting: 30 }), initialPolicyState()).state;
    // The queue empties at 101 s; the window is max(4 s, one start-up of 2 s) = 4 s.
    const seen: number[] = [];
    for (let t = 101; t <= 110; t++) {
      const r = decide(demand, at(t, { current: seen.at(-1) ?? 6, busy: 0 }), state);
      state = r.state;
      seen.push(r.decision.desired);
    }
    expect(seen.indexOf(0)).toBeGreaterThan(-1);
    // Held while the window still remembers the burst, then 6 → 0 in one decision.
    expect(seen.slice(0, 3)).toEqual([6, 6, 6]);
    expect(seen.indexOf(0) + 101).toBeLessThanOrEqual(100 + 4 + 1);
    expect(seen.filter((n, i) => i > 0 && n < (seen[i - 1] ?? 6) && n > 0)).toEqual([]);
  });

  it('does not stop a worker that arrivals within a start-up time would need again (no down-then-up inside it)', () => {
    // A trickle: a task every 1.5 s, each needing a worker for a moment; the pool stays at one, never 1 → 0 → 1.
    let state = initialPolicyState();
    let current = 0;
    const changes: Array<{ t: number; from: number; to: number }> = [];
    for (let t = 0; t < 30; t += 0.5) {
      const arriving = Math.round(t * 2) % 3 === 0;
      const r = decide(demand, at(t, { current, busy: arriving && current > 0 ? 1 : 0, waiting: arriving ? 1 : 0 }), state);
      state = r.state;
      if (r.decision.desired !== current) changes.push({ t, from: current, to: r.decision.desired });
      current = r.decision.desired;
    }
    expect(changes).toEqual([{ t: 0, from: 0, to: 1 }]);
  });

  it('the reason says what it saw: work in seconds, idle workers, start-up time', () => {
    const r = decide(demand, at(100, { current: 3, busy: 1, active: 1, waiting: 4 }), initialPolicyState());
    expect(r.decision.reason).toMatch(/4\.5 s of work \(4 queued \+ 1 running × 1\.00 s\), 2 idle of 3, start-up 2\.0 s/);
  });
});

describe('linearForecast', () => {
  it.each([
    [[], 10, 0],
    [[{ at: 0, value: 5 }], 10, 5],
    [
      [
        { at: 0, value: 0 },
        { at: 1, value: 2 },
        { at: 2, value: 4 },
      ],
      5,
      10,
    ],
    [
      [
        { at: 3, value: 7 },
        { at: 3, value: 9 },
      ],
      10,
      9,
    ],
  ])('%j at %p → %p', (points, at, value) => expect(linearForecast(points, at)).toBeCloseTo(value));
});
