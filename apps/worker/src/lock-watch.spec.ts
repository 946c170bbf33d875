import { LockLostError, LockWatch } from './lock-watch.js';
import type { ProcessGuard } from './process-guard-client.js';
import type { WorkerSettings } from './worker-settings.js';

// The guard is another process in the real worker; here only what LockWatch calls on it is recorded.
const guard = { onExpired: () => undefined, deadline: () => undefined } as unknown as ProcessGuard;

describe('LockWatch.confirm: the check just before an outcome is written', () => {
  const lockMs = 10_000;
  const watch = new LockWatch({ lockMs } as WorkerSettings, guard);
  afterAll(() => watch.onModuleDestroy());

  it.each([
    ['a lock taken just now is still held: nothing happens', 0, false],
    ['a lock within its last fifth (the margin) is given up', lockMs - 1_000, true],
    ['a lock past its expiry (a pause outlasted it) is given up', lockMs + 5_000, true],
  ])('%s', (_, ageMs, lost) => {
    const seen: Error[] = [];
    watch.begin(`t-${ageMs}`, Date.now() - ageMs, (err) => seen.push(err));
    watch.confirm(`t-${ageMs}`);
    expect(seen.length).toBe(lost ? 1 : 0);
    if (lost) expect(seen[0]).toBeInstanceOf(LockLostError);
    watch.end(`t-${ageMs}`);
  });
});
