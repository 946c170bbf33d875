/** What went wrong with a git command, in the terms a user acts on. */
export type GitProblem = 'unknown_commit' | 'unknown_ref' | 'unreachable' | 'timeout' | 'disk_full' | 'other';

const UNKNOWN_COMMIT = [/not our ref/i, /unadvertised object/i, /bad object/i, /no such remote ref/i, /couldn't find remote ref/i];
const UNREACHABLE = [
  /could not read from remote repository/i,
  /does not appear to be a git repository/i,
  /repository .* not found/i,
  /unable to access/i,
  /could not resolve host/i,
  /connection refused/i,
  /connection timed out/i,
  /unable to connect/i,
  /no route to host/i,
  /network is unreachable/i,
  /authentication failed/i,
  /permission denied/i,
  /the remote end hung up/i,
  /not a git repository/i,
  /unable to look up/i,
];
const DISK_FULL = [/no space left on device/i, /ENOSPC/, /disk quota exceeded/i];

/** Sorts a failed git command by its stderr (git's messages are stable across versions for these). */
export function classifyGitError(stderr: string, timedOut: boolean): GitProblem {
  if (timedOut) return 'timeout';
  if (DISK_FULL.some((r) => r.test(stderr))) return 'disk_full';
  if (UNKNOWN_COMMIT.some((r) => r.test(stderr))) return 'unknown_commit';
  if (UNREACHABLE.some((r) => r.test(stderr))) return 'unreachable';
  return 'other';
}

/** The last meaningful line git printed (its `fatal:` line when there is one), for an error message. */
export function gitMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const fatal = lines.filter((l) => /^(fatal|error):/.test(l));
  return (fatal.at(-1) ?? lines.at(-1) ?? 'git failed without a message').slice(0, 300);
}

/** One sentence naming the repository, the commit and what happened. */
export function describeGitProblem(problem: GitProblem, repo: string, commit: string, detail: string, timeoutMs?: number): string {
  switch (problem) {
    case 'unknown_commit':
      return `commit ${commit} is not in ${repo} (${detail})`;
    case 'unknown_ref':
      return `no branch or tag "${commit}" in ${repo}`;
    case 'unreachable':
      return `${repo} could not be fetched for commit ${commit}: ${detail}`;
    case 'timeout':
      return `fetching commit ${commit} of ${repo} took longer than ${timeoutMs ?? '?'} ms and was stopped`;
    case 'disk_full':
      return `no space left to fetch or check out commit ${commit} of ${repo}: ${detail}`;
    default:
      return `git failed for commit ${commit} of ${repo}: ${detail}`;
  }
}
