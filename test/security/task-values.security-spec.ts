import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeFailure } from '@fleet/contracts';
import { cpuTemplate, isolatedSuite, waitFor } from '@fleet/testing';

describe('task values that would reach outside the workdir', () => {
  const suite = isolatedSuite('values', {
    'worker_templates.json': { cpu: cpuTemplate({ runners: { test: { '.mjs': ['node', '{test_file}'] } } }) },
    'tests/inside.mjs': "console.log('inside ran');",
  });
  const outside = mkdtempSync(join(tmpdir(), 'fleet-outside-'));
  const marker = join(outside, 'ran');
  afterAll(() => rmSync(outside, { recursive: true, force: true }));

  const finished = (id: string) =>
    waitFor(
      async () => {
        const j = await suite.queue('cpu').job(id);
        return j && (j.state === 'completed' || j.state === 'failed') ? j : undefined;
      },
      { what: `task ${id} to finish` },
    );

  it('a symlink in the workdir that points outside it is refused before anything runs; one pointing inside runs', async () => {
    writeFileSync(join(outside, 'evil.mjs'), `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(marker)}, 'x');`);
    symlinkSync(join(outside, 'evil.mjs'), join(suite.config.path, 'tests', 'evil.mjs'));
    symlinkSync(join(suite.config.path, 'tests', 'inside.mjs'), join(suite.config.path, 'tests', 'alias.mjs'));
    suite.worker({ pool: 'cpu' });
    const [evil, alias] = await suite
      .queue('cpu')
      .add(
        { type: 'test', name: 'through a symlink', config: { test_file: 'tests/evil.mjs' } },
        { type: 'test', name: 'an alias inside', config: { test_file: 'tests/alias.mjs' } },
      );
    const refused = await finished(evil);
    expect(refused.state).toBe('failed');
    expect(decodeFailure(refused.job.failedReason)).toMatchObject({
      reason: 'invalid_task',
      message: expect.stringMatching(/resolves to a path outside/),
    });
    expect(existsSync(marker)).toBe(false);
    expect((await finished(alias)).state).toBe('completed');
  });
});
