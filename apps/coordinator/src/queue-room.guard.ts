import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { FieldErrorsException } from '@fleet/app';
import type { AuthenticatedRequest } from '@fleet/auth';
import { TaskQueueRepository } from './task-queue.repository.js';

/**
 * Before a batch is validated and routed (about 2 s of CPU for 10,000 tasks), a client whose queues have
 * certainly no room for it is answered 429 at once: the rate limit counts requests, this counts the work.
 * Runs after authentication (the global guard); a body that is not a batch is left to validation.
 */
@Injectable()
export class QueueRoomGuard implements CanActivate {
  constructor(private readonly repo: TaskQueueRepository) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<AuthenticatedRequest & { body?: { tasks?: unknown } }>();
    const n = Array.isArray(req.body?.tasks) ? req.body.tasks.length : 0;
    if (n === 0 || !req.client) return true;
    const { fits, room } = await this.repo.mayFit(req.client.name, n);
    if (fits) return true;
    const e = new FieldErrorsException(429, [
      {
        field: 'tasks',
        reason: `client ${req.client.name} has room for ${room} more queued task(s) in all pools together (at most ${this.repo.queuedCap} may wait in each pool: MAX_QUEUED_PER_CLIENT), and the batch holds ${n}: retry when some have run`,
      },
    ]);
    throw Object.assign(e, { retryAfterS: 5 });
  }
}
