import { PRIORITY_MAX, PRIORITY_MIN } from './task.js';

/**
 * Tasks follow the seed: a larger priority is more urgent. BullMQ runs its lowest positive
 * priority first (0 would mean "unprioritized", which BullMQ serves before every prioritized job),
 * so the scale is flipped into 1..1001 and every task stays in the one prioritized order.
 */
export function toQueuePriority(priority: number): number {
  if (!Number.isInteger(priority) || priority < PRIORITY_MIN || priority > PRIORITY_MAX) {
    throw new RangeError(`priority must be an integer from ${PRIORITY_MIN} to ${PRIORITY_MAX}, got ${priority}`);
  }
  return PRIORITY_MAX - priority + 1;
}

export function fromQueuePriority(queuePriority: number): number {
  return PRIORITY_MAX + 1 - queuePriority;
}
