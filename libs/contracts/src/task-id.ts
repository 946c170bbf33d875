import { randomUUID } from 'node:crypto';
import { POOL_NAME } from './worker-template.js';

/**
 * A task id names its pool (`cpu.4f0c…`), so a lookup by id goes straight to the right queue
 * without an index key per task. The separator `.` cannot occur in a pool name.
 */
export function newTaskId(pool: string): string {
  return `${pool}.${randomUUID()}`;
}

const TASK_ID = /^([a-z0-9][a-z0-9_-]{0,62})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** The pool a task id belongs to, or undefined when the string is not a task id at all. */
export function poolOfTaskId(id: string): string | undefined {
  const m = TASK_ID.exec(id);
  return m && POOL_NAME.test(m[1]) ? m[1] : undefined;
}
