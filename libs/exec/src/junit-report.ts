import { closeSync, constants, fstatSync, mkdtempSync, openSync, readSync, realpathSync, rmdirSync, unlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { TestCase } from '@fleet/contracts';

/** The file's real path when it is inside `dir` (symlinks followed); null when it leads outside; undefined when absent. */
export function realPathWithin(dir: string, file: string): string | null | undefined {
  let real: string;
  try {
    real = realpathSync.native(resolve(dir, file));
  } catch {
    return undefined;
  }
  const rel = relative(realpathSync.native(dir), real);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? null : real;
}

/** A JUnit report larger than this is not read (the file is then one case): parsing it would hold the worker up. */
export const JUNIT_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The cases of the JUnit report the runner wrote, or why there are none to read. The report is opened without
 * following a link and without blocking (a FIFO put in its place cannot hang the worker), and read only when
 * it is a regular file within JUNIT_MAX_BYTES (no more than its size then); `parse` may take a large one off the
 * event loop. Not XML, or no cases: the file is one case. The file calls are synchronous: a report lies in a folder
 * of the attempt's own under the local temporary folder, and four calls through libuv's thread pool each cost the
 * event loop a wake-up, which every test file's end paid.
 */
export async function readJUnitReport(
  path: string,
  parse: (xml: string) => Promise<TestCase[]> | TestCase[],
): Promise<{ cases?: TestCase[]; note?: string }> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? {}
      : { note: code === 'ELOOP' ? 'the JUnit report is a link: not followed' : `the JUnit report could not be opened (${code})` };
  }
  let xml: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { note: 'the JUnit report is not a regular file: not read' };
    if (st.size > JUNIT_MAX_BYTES) return { note: `the JUnit report is ${st.size} bytes, over the ${JUNIT_MAX_BYTES}-byte limit: not read` };
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    xml = buf.toString('utf8', 0, n);
  } catch {
    return {};
  } finally {
    closeSync(fd);
  }
  try {
    const cases = await parse(xml);
    return cases.length > 0 ? { cases } : {};
  } catch {
    return {};
  }
}

/**
 * A folder of an attempt's own for the JUnit report its runner writes (mode 0700, a random name under the local
 * temporary folder): no other test can guess the path, replace the report or read it. Returns the folder and the
 * report's path in it.
 */
export function makeReportDir(): { dir: string; report: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-attempt-'));
  return { dir, report: join(dir, 'junit.xml') };
}

/**
 * Removes an attempt's report folder. The usual folder, holding the report alone, goes with two synchronous calls
 * (a trip through libuv's thread pool costs the event loop a wake-up each, and every test file's end paid several).
 * A folder the test filled with more (it knows the path) is removed asynchronously, so it cannot hold anything up.
 */
export async function removeReportDir({ dir, report }: { dir: string; report: string }): Promise<void> {
  try {
    unlinkSync(report);
  } catch {
    // not written, or not a file
  }
  try {
    rmdirSync(dir);
  } catch {
    await rm(dir, { recursive: true, force: true });
  }
}
