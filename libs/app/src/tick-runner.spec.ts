import { TickRunner } from './tick-runner.js';

/** A pass whose every run waits until the test lets it finish, recording starts and ends. */
function controlledPass() {
  const log: string[] = [];
  const gates: Array<() => void> = [];
  let n = 0;
  const pass = () => {
    const i = ++n;
    log.push(`start ${i}`);
    return new Promise<void>((resolve) => gates.push(resolve)).then(() => void log.push(`end ${i}`));
  };
  const release = async () => {
    gates.shift()?.();
    // Let the pass's continuations (end, finally, a queued rerun's start) run.
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };
  return { log, pass, release };
}

describe('TickRunner: a periodic pass that never overlaps itself', () => {
  it.each([
    [false, ['start 1', 'end 1']],
    [true, ['start 1', 'end 1', 'start 2', 'end 2']],
  ])('rerun %p: calls during a pass join it (false) or coalesce into one pass after it (true)', async (rerun, expected) => {
    const { log, pass, release } = controlledPass();
    const runner = new TickRunner(pass, () => undefined, { rerun });
    const calls = [runner.run(), runner.run(), runner.run()];
    await release();
    await release();
    await Promise.all(calls);
    expect(log).toEqual(expected);
  });

  it('reports a failed pass and runs the next one', async () => {
    const errors: string[] = [];
    let n = 0;
    const runner = new TickRunner(
      async () => {
        if (++n === 1) throw new Error('redis went away');
      },
      (err) => errors.push(err.message),
      { rerun: false },
    );
    await runner.run();
    await runner.run();
    expect(errors).toEqual(['redis went away']);
    expect(n).toBe(2);
  });

  it('stop() waits for the pass in progress; the rerun queued behind it, and any later call, start nothing', async () => {
    const { log, pass, release } = controlledPass();
    const runner = new TickRunner(pass, () => undefined, { rerun: true });
    void runner.run();
    const rerun = runner.run();
    let stopped = false;
    const stopping = runner.stop().then(() => (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(false);
    await release();
    await stopping;
    await rerun;
    await runner.run();
    expect(log).toEqual(['start 1', 'end 1']);
  });
});
