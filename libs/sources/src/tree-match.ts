import picomatch from 'picomatch';
import type { FieldError } from '@fleet/contracts';

/**
 * Resolves a run's test entries (files, folders ending or not in `/`, globs) against the files of a commit's
 * tree, as the workdir resolution does on disk: every runnable file a folder holds, every runnable match of a
 * glob, each named file as is. Hidden files and folders are not matched by globs or folders.
 */
export function matchTests(
  entries: readonly string[],
  files: readonly string[],
  runnable: (file: string) => boolean,
  where: string,
): { found: string[]; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const found = new Set<string>();
  const all = new Set(files);
  const visible = files.filter((f) => !f.split('/').some((seg) => seg.startsWith('.')));
  for (const [i, entry] of entries.entries()) {
    const field = `tests[${i}]`;
    const isGlob = /[*?[{]/.test(entry);
    const folder = entry.replace(/\/$/, '');
    const isDir = !isGlob && (entry.endsWith('/') || (!all.has(entry) && visible.some((f) => f.startsWith(`${folder}/`))));
    if (!isGlob && !isDir) {
      if (!runnable(entry)) errors.push({ field, reason: `no test runner for this file's extension` });
      else if (!all.has(entry)) errors.push({ field, reason: `no such file in ${where}` });
      else found.add(entry);
      continue;
    }
    const match = isDir ? (f: string) => f.startsWith(`${folder}/`) : picomatch(entry, { dot: false });
    const matches = visible.filter((f) => match(f) && runnable(f)).sort();
    if (matches.length === 0) errors.push({ field, reason: `matches no runnable file in ${where}` });
    for (const m of matches) found.add(m);
  }
  return { found: [...found], errors };
}
