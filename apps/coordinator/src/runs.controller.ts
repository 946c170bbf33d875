import { Controller, Delete, Get, Header, HttpStatus, Param, Post, Put, Res } from '@nestjs/common';
import { z } from 'zod';
import { contractOf, limitParam, NO_QUERY, queryParser } from '@fleet/app';
import { Access, CurrentClient, OPERATORS, READERS, SUBMITTERS } from '@fleet/auth';
import type { Client } from '@fleet/config';
import { ValidBody, ValidQuery } from '@fleet/ops';
import { RUN_REQUEST_CONTRACT, type RunRequest } from '@fleet/runs';
import { QuarantineService } from './quarantine.service.js';
import { type RunView, RunViews } from './run-views.js';
import { RunsService } from './runs.service.js';

interface StatusSettable {
  status(code: number): unknown;
}

const parseRunQuery = queryParser({ cases: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false') });
const parseListQuery = queryParser({
  label: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .pipe(z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*=.{0,256}$/, { error: 'must be name=value' })).max(10))
    .optional(),
  limit: limitParam(50, 500),
});
const TestSchema = z.strictObject({
  test: z.string().min(1, { error: 'must name a test: a file, or file::case' }).max(1000),
  reason: z.string().max(500).default(''),
});
const QUARANTINE_CONTRACT = contractOf(TestSchema);
const FLAKY_QUERY = queryParser({ limit: limitParam(100, 1000) });

/** Runs: a suite as one unit (see RunsService, RunPlanner, RunViews); flakiness across runs; quarantine. */
@Controller()
export class RunsController {
  constructor(
    private readonly runs: RunsService,
    private readonly views: RunViews,
    private readonly tests: QuarantineService,
  ) {}

  /** 201 with the run and its tasks (200 with the earlier run for a known idempotency key). */
  @Post('runs')
  @Access(SUBMITTERS)
  async create(
    @ValidBody(RUN_REQUEST_CONTRACT) spec: RunRequest,
    @CurrentClient() client: Client,
    @Res({ passthrough: true }) res: StatusSettable,
  ): Promise<RunView & { duplicate: boolean }> {
    const { run, duplicate } = await this.runs.create(spec, client);
    res.status(duplicate ? HttpStatus.OK : HttpStatus.CREATED);
    return { ...run, duplicate };
  }

  /** Recent runs, newest first; `?label=branch=main` (repeatable) keeps those with every label given. */
  @Get('runs')
  @Access([...SUBMITTERS, ...READERS])
  async list(@ValidQuery(parseListQuery) q: { label?: string[]; limit: number }, @CurrentClient() client: Client) {
    const labels = Object.fromEntries((q.label ?? []).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    return { runs: await this.views.list(client, labels, q.limit) };
  }

  /** State, counts, progress, ETA, flaky tests and every file's result; `?cases=true` adds each file's test cases. */
  @Get('runs/:id')
  @Access([...SUBMITTERS, ...READERS])
  get(@Param('id') id: string, @ValidQuery(parseRunQuery) q: { cases: string }, @CurrentClient() client: Client): Promise<RunView> {
    return this.views.view(id, client, q.cases === 'true');
  }

  /** The run as one JUnit XML document (Jenkins, GitLab). */
  @Get('runs/:id/junit.xml')
  @Access([...SUBMITTERS, ...READERS])
  @Header('content-type', 'application/xml; charset=utf-8')
  junit(@Param('id') id: string, @ValidQuery(NO_QUERY) _q: object, @CurrentClient() client: Client): Promise<string> {
    return this.views.junit(id, client);
  }

  /** Cancels what has not started yet; what runs finishes. */
  @Delete('runs/:id')
  @Access([...SUBMITTERS, ...OPERATORS])
  cancel(@Param('id') id: string, @CurrentClient() client: Client): Promise<RunView> {
    return this.runs.cancel(id, client);
  }

  /** Tests that failed and then passed on a retry in some run: rate, runs seen, flaky, last seen. */
  @Get('flaky')
  @Access([...SUBMITTERS, ...READERS])
  async flaky(@ValidQuery(FLAKY_QUERY) q: { limit: number }) {
    return { flaky: await this.tests.flaky(q.limit) };
  }

  @Get('quarantine')
  @Access([...SUBMITTERS, ...READERS])
  async quarantined(@ValidQuery(NO_QUERY) _q: object) {
    return { quarantined: await this.tests.quarantineList() };
  }

  /** `{"test": "tests/a.test.mjs" | "tests/a.test.mjs::case", "reason": "…"}`: it still runs, but no longer fails a run. */
  @Put('quarantine')
  @Access(OPERATORS)
  quarantine(@ValidBody(QUARANTINE_CONTRACT) body: { test: string; reason: string }, @CurrentClient() client: Client) {
    return this.tests.quarantine(body.test, body.reason, client);
  }

  @Delete('quarantine')
  @Access(OPERATORS)
  async release(
    @ValidQuery(queryParser({ test: z.string().min(1, { error: 'must name a quarantined test' }).max(1000) })) q: { test: string },
  ): Promise<{ released: string }> {
    await this.tests.release(q.test);
    return { released: q.test };
  }
}
