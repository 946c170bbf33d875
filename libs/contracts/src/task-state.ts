/** The states a client sees. `queued` covers waiting, prioritized and delayed (a retry's backoff). */
export const TASK_STATES = ['queued', 'active', 'completed', 'failed', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

const FROM_QUEUE: Record<string, TaskState> = {
  waiting: 'queued',
  wait: 'queued',
  prioritized: 'queued',
  delayed: 'queued',
  'waiting-children': 'queued',
  paused: 'queued',
  active: 'active',
  completed: 'completed',
  failed: 'failed',
};

export function toTaskState(queueState: string): TaskState | undefined {
  return FROM_QUEUE[queueState];
}
