import { allowListProblem, repoAllowed } from './allow-list.js';
import { checkoutName, chooseEvictions, repoKey } from './cache-plan.js';
import { classifyGitError, describeGitProblem, gitMessage } from './git-errors.js';
import { matchTests } from './tree-match.js';

describe('repoAllowed: the pool template allow-list', () => {
  const list = ['https://git.example.com/org/*', 'file:///srv/git/**', 'ssh://git@host.example.com/team/app.git'];
  it.each([
    ['https://git.example.com/org/app.git', true],
    ['https://git.example.com/org/app', true],
    ['https://git.example.com/org/app/', true],
    ['https://git.example.com/org/a/b.git', false],
    ['https://git.example.com/other/app.git', false],
    ['https://git.example.com.evil.net/org/app.git', false],
    ['http://git.example.com/org/app.git', false],
    ['file:///srv/git/a.git', true],
    ['file:///srv/git/deep/down/a.git', true],
    ['file:///srv/other/a.git', false],
    ['ssh://git@host.example.com/team/app.git', true],
    ['ssh://git@host.example.com/team/app2.git', false],
  ])('%s → %s', (url, allowed) => expect(repoAllowed(url, list)).toBe(allowed));

  it('names the pool and the list when it refuses, and says when a pool takes no sources', () => {
    expect(allowListProblem('https://x.example/y.git', 'cpu', list)).toBe(
      `https://x.example/y.git is not on pool cpu's allow-list: ${list.join(', ')}`,
    );
    expect(allowListProblem('https://x.example/y.git', 'cpu', [])).toMatch(/pool cpu takes no sources/);
    expect(allowListProblem('https://git.example.com/org/app.git', 'cpu', list)).toBeNull();
  });
});

describe('cache names', () => {
  it('one readable, unique folder per repository; one checkout per commit and setup command', () => {
    expect(repoKey('https://git.example.com/org/app.git')).toMatch(/^git\.example\.com_org_app-[0-9a-f]{12}$/);
    expect(repoKey('https://git.example.com/org/app.git')).not.toBe(repoKey('https://git.example.com/org/app'));
    expect(repoKey('file:///tmp/x/../../etc/y.git')).not.toMatch(/\//);
    const sha = 'a'.repeat(40);
    const plain = checkoutName('file:///r.git', sha);
    expect(plain).toMatch(new RegExp(`@${sha}$`));
    expect(checkoutName('file:///r.git', sha, ['npm', 'ci'])).toMatch(new RegExp(`@${sha}\\+[0-9a-f]{10}$`));
    expect(checkoutName('file:///r.git', sha, ['npm', 'ci'])).not.toBe(checkoutName('file:///r.git', sha, ['npm', 'install']));
  });
});

describe('chooseEvictions: least recently used first, never one in use', () => {
  const c = (name: string, bytes: number, lastUsed: number, inUse = false) => ({ name, bytes, lastUsed, inUse });
  it.each([
    ['within budget: nothing', [c('a', 10, 1), c('b', 10, 2)], 20, []],
    ['over budget: the oldest goes', [c('a', 10, 1), c('b', 10, 2), c('c', 10, 3)], 25, ['a']],
    ['as many as it takes, oldest first', [c('b', 10, 2), c('a', 10, 1), c('c', 10, 3)], 10, ['a', 'b']],
    ['skips one in use and takes the next', [c('a', 10, 1, true), c('b', 10, 2), c('c', 10, 3)], 20, ['b']],
    ['all in use: nothing, over budget', [c('a', 10, 1, true), c('b', 10, 2, true)], 5, []],
    ['a zero budget leaves only those in use', [c('a', 10, 1), c('b', 10, 2, true), c('c', 10, 3)], 0, ['a', 'c']],
    ['a big old one frees room for many', [c('big', 100, 1), c('s1', 1, 2), c('s2', 1, 3)], 50, ['big']],
  ])('%s', (_what, checkouts, budget, evicted) => expect(chooseEvictions(checkouts, budget)).toEqual(evicted));
});

describe('classifyGitError: what a user can act on', () => {
  it.each([
    ['fatal: remote error: upload-pack: not our ref deadbeef', false, 'unknown_commit'],
    ["fatal: couldn't find remote ref refs/heads/nope", false, 'unknown_commit'],
    ["fatal: '/srv/git/x.git' does not appear to be a git repository\nfatal: Could not read from remote repository.", false, 'unreachable'],
    ['fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused', false, 'unreachable'],
    ["fatal: unable to access 'https://x/': Could not resolve host: x", false, 'unreachable'],
    ['error: file write error: No space left on device', false, 'disk_full'],
    ['', true, 'timeout'],
    ['fatal: something new', false, 'other'],
  ] as const)('%s', (stderr, timedOut, problem) => expect(classifyGitError(stderr, timedOut)).toBe(problem));

  it("keeps git's fatal line and names the repository and the commit", () => {
    expect(gitMessage('warning: x\nfatal: remote error: upload-pack: not our ref abc\n')).toBe('fatal: remote error: upload-pack: not our ref abc');
    expect(describeGitProblem('timeout', 'file:///r.git', 'abc', '', 1500)).toBe(
      'fetching commit abc of file:///r.git took longer than 1500 ms and was stopped',
    );
    expect(describeGitProblem('unreachable', 'git://h/r.git', 'abc', 'fatal: x')).toBe('git://h/r.git could not be fetched for commit abc: fatal: x');
  });
});

describe("matchTests: a run's entries against a commit's tree", () => {
  const tree = ['t/a.test.mjs', 't/b.test.mjs', 't/deep/c.test.mjs', 't/helper.js.map', 'README.md', '.hidden/x.test.mjs', 't/.skip.test.mjs'];
  const runnable = (f: string) => f.endsWith('.mjs');
  it.each([
    ['a file', ['t/a.test.mjs'], ['t/a.test.mjs'], []],
    ['a folder with a slash', ['t/'], ['t/a.test.mjs', 't/b.test.mjs', 't/deep/c.test.mjs'], []],
    ['a folder without one', ['t/deep'], ['t/deep/c.test.mjs'], []],
    ['a glob', ['t/*.test.mjs'], ['t/a.test.mjs', 't/b.test.mjs'], []],
    ['a deep glob, no hidden files', ['**/*.test.mjs'], ['t/a.test.mjs', 't/b.test.mjs', 't/deep/c.test.mjs'], []],
    ['entries that overlap count once', ['t/a.test.mjs', 't/'], ['t/a.test.mjs', 't/b.test.mjs', 't/deep/c.test.mjs'], []],
    ['a missing file', ['t/zz.test.mjs'], [], [{ field: 'tests[0]', reason: 'no such file in commit X' }]],
    ['a file with no runner', ['README.md'], [], [{ field: 'tests[0]', reason: "no test runner for this file's extension" }]],
    ['a glob that matches nothing', ['x/*.mjs'], [], [{ field: 'tests[0]', reason: 'matches no runnable file in commit X' }]],
  ])('%s', (_what, entries, found, errors) => expect(matchTests(entries, tree, runnable, 'commit X')).toEqual({ found, errors }));
});
