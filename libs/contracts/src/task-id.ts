import { createHash, randomUUID } from 'node:crypto';
import { POOL_NAME } from './worker-template.js';

/**
 * A task id names its pool (`cpu.4f0c…`), so a lookup by id goes straight to the right queue
 * without an index key per task. The separator `.` cannot occur in a pool name.
 */
export function newTaskId(pool: string): string {
  return `${pool}.${randomUUID()}`;
}

/**
 * The id of the task an idempotency key names, derived from the key (and the client it belongs to): queueing
 * the same key twice, even by two coordinators at once or by a transaction Redis replays, names one job,
 * and BullMQ never adds a job whose id exists.
 */
export function idempotentTaskId(pool: string, client: string, key: string): string {
  const h = createHash('sha256').update(`${client}\0${key}`).digest('hex');
  return `${pool}.${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const TASK_ID = /^([a-z0-9][a-z0-9_-]{0,62})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** The pool a task id belongs to, or undefined when the string is not a task id at all. */
export function poolOfTaskId(id: string): string | undefined {
  const m = TASK_ID.exec(id);
  return m && POOL_NAME.test(m[1]) ? m[1] : undefined;
}
