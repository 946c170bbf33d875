import { normalizeRemote, repoFromCiEnv, repoUrlProblem, SourceSchema, withoutCredentials } from './source.js';

describe('repoUrlProblem: which repository URLs the fleet fetches', () => {
  it.each([
    ['https://git.example.com/org/app.git', null],
    ['ssh://git@git.example.com/org/app.git', null],
    ['git://127.0.0.1:9418/app.git', null],
    ['file:///srv/git/app.git', null],
    ['https://user:secret@git.example.com/org/app.git', /credentials/],
    ['https://token@git.example.com/org/app.git', /credentials/],
    ['ssh://git:pw@git.example.com/org/app.git', /credentials/],
    ['ext::sh -c touch% /tmp/pwned', /must be a URL|scheme/],
    ['ftp://git.example.com/app.git', /scheme ftp: is not supported/],
    ['https://git.example.com/org/app.git?x=1', /query/],
    ['file://host/srv/app.git', /file URLs take no host/],
    ['https://git.example.com/', /no repository path/],
    ['file:///srv/git/../etc', /\. or \.\. segments/],
    ['not a url', /must be a URL/],
  ])('%s', (url, problem) => {
    const got = repoUrlProblem(url);
    if (problem === null) expect(got).toBeNull();
    else expect(got).toMatch(problem);
  });
});

describe('SourceSchema: commit names', () => {
  const ok = (commit: string) => SourceSchema.safeParse({ repo: 'file:///r.git', commit }).success;
  it.each([
    ['a'.repeat(40), true],
    ['main', true],
    ['release/1.2', true],
    ['v1.2.3', true],
    ['-upload-pack=x', false],
    ['a..b', false],
    ['x@{1}', false],
    ['x.lock', false],
    ['.hidden', false],
    ['x/', false],
    ['has space', false],
  ])('%s → %s', (commit, valid) => expect(ok(commit)).toBe(valid));
});

describe('what --source auto sends', () => {
  it('drops credentials from a remote (GitLab job tokens), keeps ssh user names', () => {
    expect(withoutCredentials('https://gitlab-ci-token:abc@gitlab.example.com/g/p.git')).toBe('https://gitlab.example.com/g/p.git');
    expect(withoutCredentials('ssh://git@host/g/p.git')).toBe('ssh://git@host/g/p.git');
  });
  it('reads the repository from GitHub Actions and GitLab CI, else nothing', () => {
    expect(repoFromCiEnv({ GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'o/r' })).toBe('https://github.com/o/r.git');
    expect(repoFromCiEnv({ CI_PROJECT_URL: 'https://gitlab.example.com/g/p' })).toBe('https://gitlab.example.com/g/p.git');
    expect(repoFromCiEnv({})).toBeUndefined();
  });
  it('turns scp-like and path remotes into URLs', () => {
    expect(normalizeRemote('git@github.com:o/r.git')).toBe('ssh://git@github.com/o/r.git');
    expect(normalizeRemote('/srv/git/r.git')).toBe('file:///srv/git/r.git');
    expect(normalizeRemote('https://x:y@h.example/r.git')).toBe('https://h.example/r.git');
  });
});
