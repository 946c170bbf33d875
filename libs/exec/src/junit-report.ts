import { constants, realpathSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import type { TestCase } from '@fleet/contracts';

/** The file's real path when it is inside `dir` (symlinks followed); null when it leads outside; undefined when absent. */
export function realPathWithin(dir: string, file: string): string | null | undefined {
  let real: string;
  try {
    real = realpathSync(resolve(dir, file));
  } catch {
    return undefined;
  }
  const rel = relative(realpathSync(dir), real);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? null : real;
}

/** A JUnit report larger than this is not read (the file is then one case): parsing it would hold the worker up. */
export const JUNIT_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The cases of the JUnit report the runner wrote, or why there are none to read. The report is opened without
 * following a link and without blocking (a FIFO put in its place cannot hang the worker), and read only when
 * it is a regular file within JUNIT_MAX_BYTES; a large one is parsed off the event loop (`parse` (the worker parses a large one off its event loop)).
 * Not XML, or no cases: the file is one case.
 */
export async function readJUnitReport(
  path: string,
  parse: (xml: string) => Promise<TestCase[]> | TestCase[],
): Promise<{ cases?: TestCase[]; note?: string }> {
  let file;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? {}
      : { note: code === 'ELOOP' ? 'the JUnit report is a link: not followed' : `the JUnit report could not be opened (${code})` };
  }
  try {
    const st = await file.stat();
    if (!st.isFile()) return { note: 'the JUnit report is not a regular file: not read' };
    if (st.size > JUNIT_MAX_BYTES) return { note: `the JUnit report is ${st.size} bytes, over the ${JUNIT_MAX_BYTES}-byte limit: not read` };
    const cases = await parse(await file.readFile('utf8'));
    return cases.length > 0 ? { cases } : {};
  } catch {
    return {};
  } finally {
    await file.close();
  }
}
