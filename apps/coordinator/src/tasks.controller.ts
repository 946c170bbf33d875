import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Post, Res } from '@nestjs/common';
import { ContractPipe } from '@fleet/app';
import { parseTask, parseTaskList, type Task } from '@fleet/contracts';
import { type Submitted, TasksService } from './tasks.service.js';
import type { TaskView } from './task-view.js';

interface StatusSettable {
  status(code: number): unknown;
}

@Controller('tasks')
export class TasksController {
  constructor(private readonly tasks: TasksService) {}

  /** 201 with the new task; 200 with the earlier one when its idempotency key was seen before. */
  @Post()
  async submit(@Body(new ContractPipe(parseTask)) task: Task, @Res({ passthrough: true }) res: StatusSettable): Promise<Submitted> {
    const submitted = await this.tasks.submit(task);
    res.status(submitted.duplicate ? HttpStatus.OK : HttpStatus.CREATED);
    return submitted;
  }

  /** All or nothing: one bad task refuses the whole batch and queues none. */
  @Post('batch')
  @HttpCode(HttpStatus.CREATED)
  async submitBatch(@Body(new ContractPipe(parseTaskList)) tasks: Task[]): Promise<{ ids: string[]; duplicates: number }> {
    const submitted = await this.tasks.submitBatch(tasks);
    return { ids: submitted.map((s) => s.id), duplicates: submitted.filter((s) => s.duplicate).length };
  }

  @Get(':id')
  get(@Param('id') id: string): Promise<TaskView> {
    return this.tasks.get(id);
  }

  /** Cancels a queued task; a running or finished one gets a 409 that says so. */
  @Delete(':id')
  cancel(@Param('id') id: string): Promise<TaskView> {
    return this.tasks.cancel(id);
  }
}
