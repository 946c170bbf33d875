import { spawn } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { classifyGitError, describeGitProblem, type GitProblem, gitMessage } from './git-errors.js';

/**
 * The one door to git for the coordinator and the workers: argv only (never a shell), no terminal prompt
 * (a host without credentials fails at once instead of waiting for a password), bounded by a timeout and an
 * optional signal, and stopped as a process group so no helper (`git-remote-https`, `index-pack`) outlives it.
 */
export interface GitResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const OUTPUT_CAP = 64 * 1024 * 1024;

export function runGit(args: readonly string[], opts: { cwd?: string; timeoutMs: number; signal?: AbortSignal }): Promise<GitResult> {
  return new Promise((resolve) => {
    const child = spawn('git', args, {
      cwd: opts.cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_SSH_COMMAND: process.env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes', LC_ALL: 'C' },
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let timedOut = false;
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    const onAbort = () => kill();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (b: Buffer) => {
      if (outBytes < OUTPUT_CAP) out.push(b);
      outBytes += b.length;
    });
    child.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-8192)));
    const done = (code: number | null) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: err, timedOut });
    };
    child.on('error', (e) => {
      err += e.message;
      done(null);
    });
    child.on('close', (code) => done(code));
  });
}

/** A git failure with what the user needs: the kind of problem and a sentence naming repository and commit. */
export class GitSourceError extends Error {
  constructor(
    readonly problem: GitProblem,
    message: string,
  ) {
    super(message);
  }
}

function failure(r: GitResult, repo: string, commit: string, timeoutMs: number): GitSourceError {
  const problem = classifyGitError(r.stderr, r.timedOut);
  return new GitSourceError(problem, describeGitProblem(problem, repo, commit, gitMessage(r.stderr), timeoutMs));
}

/** Whether the mirror holds `sha` as a commit. */
export async function hasCommit(mirror: string, sha: string): Promise<boolean> {
  const r = await runGit(['--git-dir', mirror, 'cat-file', '-e', `${sha}^{commit}`], { timeoutMs: 30_000 });
  return r.code === 0;
}

/**
 * Fetches one commit (and its history) into the mirror, and pins it with a ref so no `gc` ever prunes it
 * (checkouts borrow the mirror's objects). Protocol v2 servers serve any reachable commit by its sha.
 */
export async function fetchCommit(mirror: string, repo: string, sha: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const r = await runGit(['--git-dir', mirror, 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--', repo, `+${sha}:refs/fleet/${sha}`], {
    timeoutMs,
    ...(signal && { signal }),
  });
  if (r.code !== 0) throw failure(r, repo, sha, timeoutMs);
}

/** A branch or tag name's commit on the server (a tag's peeled commit), or a GitSourceError. */
export async function resolveRef(repo: string, ref: string, timeoutMs: number): Promise<string> {
  const r = await runGit(['ls-remote', '--', repo, `refs/heads/${ref}`, `refs/tags/${ref}`, `refs/tags/${ref}^{}`], { timeoutMs });
  if (r.code !== 0) throw failure(r, repo, ref, timeoutMs);
  const refs = new Map(
    r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [sha, name] = l.split('\t');
        return [name, sha] as const;
      }),
  );
  const sha = refs.get(`refs/heads/${ref}`) ?? refs.get(`refs/tags/${ref}^{}`) ?? refs.get(`refs/tags/${ref}`);
  if (!sha) throw new GitSourceError('unknown_ref', describeGitProblem('unknown_ref', repo, ref, ''));
  return sha;
}

/** Every file path in a commit's tree. */
export async function listTree(mirror: string, sha: string): Promise<string[]> {
  const r = await runGit(['--git-dir', mirror, 'ls-tree', '-r', '-z', '--name-only', sha], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`git ls-tree ${sha} failed: ${gitMessage(r.stderr)}`);
  return r.stdout.split('\0').filter(Boolean);
}

/** Makes a bare repository at `path` unless one is there, building it at `aside` first and renaming it into place. */
export async function initMirror(path: string, aside: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await mkdir(dirname(aside), { recursive: true });
  const r = await runGit(['init', '--quiet', '--bare', aside], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`git init failed: ${gitMessage(r.stderr)}`);
  // Objects are only ever added (pinned by refs/fleet/*): automatic gc would only cost time here.
  await runGit(['--git-dir', aside, 'config', 'gc.auto', '0'], { timeoutMs: 30_000 });
  try {
    await rename(aside, path);
  } catch (e) {
    await rm(aside, { recursive: true, force: true });
    if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}
