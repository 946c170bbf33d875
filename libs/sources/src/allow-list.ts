import picomatch from 'picomatch';

/** A repository URL in the form patterns are written against: no trailing slash; `.git` optional on either side. */
const normal = (url: string) => url.replace(/\/+$/, '').replace(/\.git$/, '');

/**
 * Whether `url` is on the allow-list: `*` matches within one path segment and `**` across segments, so
 * `https://git.example.com/org/*` admits `https://git.example.com/org/app.git` but not `…/org/a/b` or
 * `https://git.example.com/other/x`. Matching is exact otherwise (case included: hosts are written lowercase).
 */
export function repoAllowed(url: string, patterns: readonly string[]): boolean {
  const target = normal(url);
  return patterns.some((p) => picomatch.isMatch(target, normal(p), { dot: false, nobrace: true, noextglob: true, bash: false }));
}

/** The reason a repository may not be a pool's source, naming the list; null when it may. */
export function allowListProblem(url: string, pool: string, patterns: readonly string[]): string | null {
  if (patterns.length === 0) return `pool ${pool} takes no sources (its template has no "sources" allow-list)`;
  return repoAllowed(url, patterns) ? null : `${url} is not on pool ${pool}'s allow-list: ${patterns.join(', ')}`;
}
