import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@fleet/config';
import { TEST_REDIS_URL } from '@fleet/testing';

describe('the soak (npm run soak), CI-sized', () => {
  it('3,000 tasks of 20 ms with a worker SIGKILLed every half second: each completed once, every attempt counted once, memory back after', () => {
    const args = ['--tasks', '3000', '--duration-ms', '20', '--kill-every', '0.5'];
    const soak = spawnSync(process.execPath, [join(repoRoot(), 'dist', 'bench', 'soak.js'), ...args], {
      env: { ...process.env, REDIS_URL: TEST_REDIS_URL },
      encoding: 'utf8',
      timeout: 180_000,
    });
    const out = `${soak.stdout}${soak.stderr}`;
    expect(Number(/(\d+) workers killed and replaced/.exec(out)?.[1])).toBeGreaterThan(0);
    expect(out).not.toMatch(/FAIL/);
    expect(out).toMatch(/soak passed/);
    expect(soak.status).toBe(0);
  }, 200_000);
});
