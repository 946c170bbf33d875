import { Controller, Delete, Get, HttpCode, HttpStatus, Param, Post, Res, UseGuards } from '@nestjs/common';
import { limitParam, NO_QUERY, queryParser } from '@fleet/app';
import { z } from 'zod';
import { Access, CurrentClient, OPERATORS, READERS, SUBMITTERS } from '@fleet/auth';
import type { Client } from '@fleet/config';
import { PoolNameSchema, TASK_CONTRACT, TASK_LIST_CONTRACT, type Task } from '@fleet/contracts';
import { ValidBody, ValidQuery } from '@fleet/ops';
import { QueueRoomGuard } from './queue-room.guard.js';
import { type Submitted, TasksService } from './tasks.service.js';
import type { TaskView } from './task-view.js';

const LIST_QUERY = queryParser({
  pool: PoolNameSchema.optional(),
  state: z.enum(['queued', 'active', 'completed', 'failed'], { error: 'must be queued, active, completed or failed' }).optional(),
  limit: limitParam(50, 200),
});

interface StatusSettable {
  status(code: number): unknown;
}

@Controller('tasks')
export class TasksController {
  constructor(private readonly tasks: TasksService) {}

  /** 201 with the new task; 200 with the earlier one when its idempotency key was seen before (from this client). */
  @Post()
  @Access(SUBMITTERS)
  async submit(
    @ValidBody(TASK_CONTRACT) task: Task,
    @CurrentClient() client: Client,
    @Res({ passthrough: true }) res: StatusSettable,
  ): Promise<Submitted> {
    const submitted = await this.tasks.submit(task, client);
    res.status(submitted.duplicate ? HttpStatus.OK : HttpStatus.CREATED);
    return submitted;
  }

  /** All or nothing: one bad task refuses the whole batch and queues none. */
  @Post('batch')
  @Access(SUBMITTERS)
  @UseGuards(QueueRoomGuard)
  @HttpCode(HttpStatus.CREATED)
  async submitBatch(@ValidBody(TASK_LIST_CONTRACT) tasks: Task[], @CurrentClient() client: Client): Promise<{ ids: string[]; duplicates: number }> {
    const submitted = await this.tasks.submitBatch(tasks, client);
    return { ids: submitted.map((s) => s.id), duplicates: submitted.filter((s) => s.duplicate).length };
  }

  /** The newest tasks, of a pool and a state if given (a client that only submits sees its own). */
  @Get()
  @Access([...SUBMITTERS, ...READERS])
  list(
    @ValidQuery(LIST_QUERY) q: { pool?: string; state?: 'queued' | 'active' | 'completed' | 'failed'; limit: number },
    @CurrentClient() client: Client,
  ): Promise<{ tasks: TaskView[] }> {
    return this.tasks.recent(client, q).then((tasks) => ({ tasks }));
  }

  /** Any task for readers and operators; a client that only submits sees its own (another's is a 404). */
  @Get(':id')
  @Access([...SUBMITTERS, ...READERS])
  get(@Param('id') id: string, @CurrentClient() client: Client, @ValidQuery(NO_QUERY) _q: object): Promise<TaskView> {
    return this.tasks.get(id, client);
  }

  /** Cancels a queued task (a submitter its own, an operator any); a running or finished one gets a 409 that says so. */
  @Delete(':id')
  @Access([...SUBMITTERS, ...OPERATORS])
  cancel(@Param('id') id: string, @CurrentClient() client: Client): Promise<TaskView> {
    return this.tasks.cancel(id, client);
  }
}
