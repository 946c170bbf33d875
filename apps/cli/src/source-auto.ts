import { normalizeRemote, repoFromCiEnv } from '@fleet/contracts';
import { runGit } from '@fleet/sources';
import { CliError } from './api.js';

async function git(args: string[], cwd: string): Promise<string> {
  const r = await runGit(args, { cwd, timeoutMs: 30_000 });
  if (r.code !== 0) throw new CliError(`--source auto: git ${args.join(' ')} failed in ${cwd}: ${r.stderr.trim() || 'no output'}`, 2);
  return r.stdout.trim();
}

/**
 * `--source auto`: the repository and commit of the checkout the CLI runs in (a CI job's). The repository is
 * the CI's own name for it (GitHub Actions, GitLab CI) or the `origin` remote, never with credentials; the
 * commit is HEAD. A tree with changes git does not have is refused unless `allowDirty`: the fleet tests the
 * commit, so those changes would not be tested.
 */
export async function sourceFromCheckout(cwd: string, allowDirty: boolean, repo?: string): Promise<{ repo: string; commit: string }> {
  const commit = await git(['rev-parse', '--verify', 'HEAD^{commit}'], cwd);
  const url = repo ?? repoFromCiEnv(process.env) ?? normalizeRemote(await git(['remote', 'get-url', 'origin'], cwd));
  if (!allowDirty) {
    const changes = await git(['status', '--porcelain'], cwd);
    if (changes !== '') {
      const listed = changes.split('\n').slice(0, 10).join('\n  ');
      throw new CliError(
        `--source auto: the checkout has changes that are not in commit ${commit.slice(0, 12)}, and the fleet tests the commit:\n  ${listed}\n` +
          'commit and push them, or pass --allow-dirty to test the commit without them',
        2,
      );
    }
  }
  return { repo: url, commit };
}
