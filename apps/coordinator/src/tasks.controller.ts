import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Post, Query, Res } from '@nestjs/common';
import { ContractPipe, NO_QUERY } from '@fleet/app';
import { Access, CurrentClient, OPERATORS, READERS, SUBMITTERS } from '@fleet/auth';
import type { Client } from '@fleet/config';
import { parseTask, parseTaskList, type Task } from '@fleet/contracts';
import { type Submitted, TasksService } from './tasks.service.js';
import type { TaskView } from './task-view.js';

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
    @Body(new ContractPipe(parseTask)) task: Task,
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
  @HttpCode(HttpStatus.CREATED)
  async submitBatch(
    @Body(new ContractPipe(parseTaskList)) tasks: Task[],
    @CurrentClient() client: Client,
  ): Promise<{ ids: string[]; duplicates: number }> {
    const submitted = await this.tasks.submitBatch(tasks, client);
    return { ids: submitted.map((s) => s.id), duplicates: submitted.filter((s) => s.duplicate).length };
  }

  /** Any task for readers and operators; a client that only submits sees its own (another's is a 404). */
  @Get(':id')
  @Access([...SUBMITTERS, ...READERS])
  get(@Param('id') id: string, @CurrentClient() client: Client, @Query(new ContractPipe(NO_QUERY)) _q: object): Promise<TaskView> {
    return this.tasks.get(id, client);
  }

  /** Cancels a queued task (a submitter its own, an operator any); a running or finished one gets a 409 that says so. */
  @Delete(':id')
  @Access([...SUBMITTERS, ...OPERATORS])
  cancel(@Param('id') id: string, @CurrentClient() client: Client): Promise<TaskView> {
    return this.tasks.cancel(id, client);
  }
}
