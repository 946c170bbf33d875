import { z } from 'zod';

/** The transports a source may use; git runs them with the host's own configuration (credential helpers, ssh keys). */
export const SOURCE_SCHEMES = ['https:', 'http:', 'ssh:', 'git:', 'file:'] as const;

/** A full object name: SHA-1 (40 hex) or SHA-256 (64 hex). */
export const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/**
 * A branch or tag name as a client may give it (resolved to a sha once, at submit time): git's ref-name rules,
 * narrowed to the characters refs are made of in practice, so no name can read as an option or climb with `..`.
 */
const REF_NAME = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)(?!.*\.lock$)(?!.*\/$)(?!.*\.$)[A-Za-z0-9_][A-Za-z0-9_./+-]*$/;

/** Why a repository URL is refused, or null when it is one the fleet may fetch. */
export function repoUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'must be a URL such as https://git.example.com/org/repo.git, ssh://git@host/org/repo.git or file:///srv/git/repo.git';
  }
  if (!(SOURCE_SCHEMES as readonly string[]).includes(u.protocol))
    return `the scheme ${u.protocol} is not supported; use one of ${SOURCE_SCHEMES.map((s) => s.slice(0, -1)).join(', ')}`;
  // Credentials never travel through Redis: each host's git configuration supplies them.
  if (u.password !== '' || (u.username !== '' && u.protocol !== 'ssh:'))
    return 'must not hold credentials: each host fetches with its own git configuration (credential helper, ssh keys)';
  if (u.search !== '' || u.hash !== '') return 'must not have a query or a fragment';
  if (u.protocol === 'file:' ? u.host !== '' : u.host === '')
    return u.protocol === 'file:' ? 'file URLs take no host (file:///path)' : 'names no host';
  if (u.pathname === '/' || u.pathname === '') return 'names no repository path';
  // Checked on the text as given: URL parsing already folded the segments away.
  if (/\/\.\.?(\/|$)/.test(url.replace(/^[a-z]+:\/\//, '/')) || /%2e/i.test(url)) return 'must not hold . or .. segments';
  return null;
}

export const SourceSchema = z.strictObject({
  repo: z
    .string({ error: 'must be a string' })
    .max(500, { error: 'must be at most 500 characters' })
    .superRefine((url, ctx) => {
      const problem = repoUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  commit: z
    .string({ error: 'must be a string' })
    .max(200, { error: 'must be at most 200 characters' })
    .regex(REF_NAME, { error: 'must be a commit sha, or a branch or tag name (letters, digits and _ . / + -, not starting with - or .)' }),
});

/** The repository and commit a test runs at. On the queue `commit` is always a full sha (the coordinator resolves names). */
export type Source = z.output<typeof SourceSchema>;

/** The URL without user name or password (GitLab's CI_REPOSITORY_URL carries a job token: never forward it). */
export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (u.protocol === 'ssh:' && u.password === '') return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * The repository URL a CI job names in its environment (GitHub Actions, GitLab CI), without credentials;
 * undefined outside CI (then the checkout's `origin` remote is used).
 */
export function repoFromCiEnv(env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY) return `${env.GITHUB_SERVER_URL.replace(/\/$/, '')}/${env.GITHUB_REPOSITORY}.git`;
  if (env.CI_PROJECT_URL) return `${withoutCredentials(env.CI_PROJECT_URL).replace(/\/$/, '')}.git`;
  return undefined;
}

/** An scp-like remote (`git@host:org/repo.git`) as the ssh URL git reads it as; other URLs as they are. */
export function normalizeRemote(remote: string): string {
  const scp = /^([A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+):(?!\/\/)(.+)$/.exec(remote);
  if (scp && !remote.includes('://')) return `ssh://${scp[1] ?? ''}${scp[2]}/${scp[3].replace(/^\//, '')}`;
  if (remote.startsWith('/')) return `file://${remote}`;
  return withoutCredentials(remote);
}
