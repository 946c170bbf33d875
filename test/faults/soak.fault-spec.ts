import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@fleet/config';
import { isolatedSuite } from '@fleet/testing';

describe('the soak (npm run soak), CI-sized', () => {
  // A Redis of its own: the soak checks the server's memory, which other suites running beside it would move.
  const suite = isolatedSuite('soak', {}, { privateRedis: {} });

  it('1,500 tasks of 20 ms with a worker SIGKILLed every half second and one SIGSTOPped for 1-12 s every second: each completed once, every attempt counted once, memory back after', () => {
    const args = ['--tasks', '1500', '--duration-ms', '20', '--kill-every', '0.5', '--pause-every', '1'];
    const soak = spawnSync(process.execPath, [join(repoRoot(), 'dist', 'bench', 'soak.js'), ...args], {
      env: { ...process.env, REDIS_URL: suite.redisUrl },
      encoding: 'utf8',
      timeout: 280_000,
    });
    const out = `${soak.stdout}${soak.stderr}`;
    expect(Number(/(\d+) workers killed and replaced/.exec(out)?.[1])).toBeGreaterThan(0);
    expect(Number(/(\d+) paused and resumed/.exec(out)?.[1])).toBeGreaterThan(0);
    expect(out).not.toMatch(/FAIL/);
    expect(out).toMatch(/soak passed/);
    expect(soak.status).toBe(0);
  });
});
