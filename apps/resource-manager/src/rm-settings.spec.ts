import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultWorkerEntry, loadResourceManagerSettings } from './rm-settings.js';

describe('resource manager settings', () => {
  it('reads the host a resource manager offers: slots, and the pools it may run with a limit each', () => {
    const all = loadResourceManagerSettings({ RM_HOST_SLOTS: '8' });
    expect(all.host.slots).toBe(8);
    // Every pool it scales (the example's gpu pool is MANUAL), up to the pool's max_workers.
    expect(Object.keys(all.host.pools)).toEqual(['cpu']);
    expect(loadResourceManagerSettings({ RM_HOST_POOLS: 'cpu=3' }).host.pools).toEqual({ cpu: 3 });
    expect(loadResourceManagerSettings({ RM_HOST_POOLS: 'cpu' }).host.pools).toEqual(all.host.pools);
    expect(() => loadResourceManagerSettings({ RM_HOST_POOLS: 'gpu=1' })).toThrow('RM_HOST_POOLS: "gpu" is not a pool this manager scales');
    expect(() => loadResourceManagerSettings({ RM_HOST_POOLS: 'cpu=-1' })).toThrow('RM_HOST_POOLS: cpu: the limit must be an integer');
    expect(() => loadResourceManagerSettings({ RM_HOST_SLOTS: '0' })).toThrow('RM_HOST_SLOTS');
  });

  it('starts the built worker app unless WORKER_ENTRY names another', () => {
    expect(loadResourceManagerSettings({}).workerEntry).toBe(defaultWorkerEntry());
    // The bundle when the build made one, the compiled app otherwise.
    const dir = mkdtempSync(join(tmpdir(), 'rm-entry-'));
    try {
      expect(defaultWorkerEntry(dir)).toBe(join(dir, 'main.js'));
      writeFileSync(join(dir, 'main.bundle.mjs'), '');
      expect(defaultWorkerEntry(dir)).toBe(join(dir, 'main.bundle.mjs'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(loadResourceManagerSettings({ WORKER_ENTRY: '/opt/w.js' }).workerEntry).toBe('/opt/w.js');
  });
});
