import { Worker } from 'node:worker_threads';
import { parseJUnit } from '@fleet/runs';
import type { TestCase } from '@fleet/contracts';
import { workerFile } from '../worker-files.js';

/**
 * Reports up to this size are parsed on the worker's own thread (at most ~60 ms on this 2-core machine);
 * larger ones on a thread of their own, so they never hold up lock renewals, heartbeats or other tasks (4 MiB
 * took 0.9 s). A thread costs its start-up (~50 ms), which small reports, the common case, do not pay.
 */
export const JUNIT_INLINE_MAX_BYTES = 256 * 1024;

/** A parse on a thread that takes longer than this is given up (the report then counts as one case). */
const THREAD_TIMEOUT_MS = 60_000;

/** The cases of a JUnit report, parsed where its size says (see JUNIT_INLINE_MAX_BYTES). */
export function parseJUnitOffLoop(xml: string): Promise<TestCase[]> {
  if (Buffer.byteLength(xml) <= JUNIT_INLINE_MAX_BYTES) return Promise.resolve(parseJUnit(xml));
  return new Promise((resolve, reject) => {
    const thread = new Worker(workerFile('handlers/junit-parse.thread.js'), { workerData: xml });
    const timer = setTimeout(() => {
      void thread.terminate();
      reject(new Error(`parsing the JUnit report took over ${THREAD_TIMEOUT_MS} ms`));
    }, THREAD_TIMEOUT_MS);
    thread.once('message', (cases: TestCase[]) => {
      clearTimeout(timer);
      resolve(cases);
      void thread.terminate();
    });
    thread.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    thread.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the JUnit parse thread exited (${code}) without an answer`));
    });
  });
}
