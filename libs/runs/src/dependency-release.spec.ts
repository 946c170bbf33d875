import { releaseBlocked } from './dependency-release.js';
import type { FileResult } from './run-outcome.js';

const files = (states: Record<string, FileResult['state']>) => Object.entries(states).map(([key, state]) => ({ key, state }));

describe('releaseBlocked: what a run does with the tasks that wait on others', () => {
  it.each([
    ['a passed dependency queues its dependent', { setup: 'passed' }, [{ key: 'e2e', deps: ['setup'] }], false, [{ key: 'e2e', action: 'queue' }]],
    ['a flaky dependency counts as passed', { setup: 'flaky' }, [{ key: 'e2e', deps: ['setup'] }], false, [{ key: 'e2e', action: 'queue' }]],
    ['a running dependency keeps it waiting', { setup: 'running' }, [{ key: 'e2e', deps: ['setup'] }], false, []],
    [
      'a failed dependency cancels it, naming the dependency',
      { setup: 'failed' },
      [{ key: 'e2e', deps: ['setup'] }],
      false,
      [{ key: 'e2e', action: 'cancel', reason: 'dependency setup failed' }],
    ],
    [
      'an errored dependency: "could not run"',
      { setup: 'error' },
      [{ key: 'e2e', deps: ['setup'] }],
      false,
      [{ key: 'e2e', action: 'cancel', reason: 'dependency setup could not run' }],
    ],
    [
      'a cancelled dependency: "was cancelled"',
      { setup: 'cancelled' },
      [{ key: 'e2e', deps: ['setup'] }],
      false,
      [{ key: 'e2e', action: 'cancel', reason: 'dependency setup was cancelled' }],
    ],
    [
      'a cancelled run cancels everything waiting',
      { setup: 'passed' },
      [{ key: 'e2e', deps: ['setup'] }],
      true,
      [{ key: 'e2e', action: 'cancel', reason: 'the run was cancelled' }],
    ],
    ['"*" waits for every test file', { 'a.test.mjs': 'passed', 'b.test.mjs': 'running' }, [{ key: 'report', deps: ['*'] }], false, []],
    [
      '"*" released once every test file passed',
      { 'a.test.mjs': 'passed', 'b.test.mjs': 'flaky' },
      [{ key: 'report', deps: ['*'] }],
      false,
      [{ key: 'report', action: 'queue' }],
    ],
    [
      '"*" cancelled by one failed test file',
      { 'a.test.mjs': 'passed', 'b.test.mjs': 'failed' },
      [{ key: 'report', deps: ['*'] }],
      false,
      [{ key: 'report', action: 'cancel', reason: 'dependency b.test.mjs failed' }],
    ],
    ['a dependency not in the run keeps it waiting', {}, [{ key: 'e2e', deps: ['nowhere'] }], false, []],
  ])('%s', (_name, states, blocked, cancelled, expected) => {
    const f = files(states as Record<string, FileResult['state']>);
    const tests = f.filter((x) => x.key.endsWith('.test.mjs')).map((x) => x.key);
    expect(releaseBlocked(f, blocked, tests, cancelled)).toEqual(expected);
  });
});
