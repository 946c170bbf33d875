import { Controller, Get, Header, HttpCode, HttpStatus, Param, Post } from '@nestjs/common';
import { ApiOperation } from '@nestjs/swagger';
import { z } from 'zod';
import { contractOf, NO_QUERY, queryParser } from '@fleet/app';
import { Access, CurrentClient, SUBMITTERS } from '@fleet/auth';
import type { Client } from '@fleet/config';
import { ValidBody, ValidQuery } from '@fleet/ops';
import {
  type AttemptReport,
  AttemptReportSchema,
  type JoinBuild,
  JoinBuildSchema,
  type LeaseAnswer,
  type LeaseRequest,
  LeaseSchema,
  type RenewRequest,
  RenewSchema,
  type ReportAnswer,
} from '@fleet/runs';
import { BuildsService, type Joined } from './builds.service.js';
import { type RunView, RunViews } from './run-views.js';

const JOIN = contractOf(JoinBuildSchema);
const LEASE = contractOf(LeaseSchema);
const RENEW = contractOf(RenewSchema);
const REPORT = contractOf(AttemptReportSchema);
const parseViewQuery = queryParser({ cases: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false') });

/**
 * CI nodes as workers (see BuildsService): a build's nodes join its run, lease its files, renew the leases
 * while they run them, and report each outcome; all over HTTP with a client token.
 */
@Controller('builds')
export class BuildsController {
  constructor(
    private readonly builds: BuildsService,
    private readonly views: RunViews,
  ) {}

  @Post(':build/nodes')
  @HttpCode(HttpStatus.OK)
  @Access(SUBMITTERS)
  @ApiOperation({ summary: 'A CI node joins its build (the first one creates the build’s run)' })
  join(@Param('build') build: string, @ValidBody(JOIN) body: JoinBuild, @CurrentClient() client: Client): Promise<Joined> {
    return this.builds.join(build, body, client);
  }

  @Post(':build/leases')
  @HttpCode(HttpStatus.OK)
  @Access(SUBMITTERS)
  @ApiOperation({ summary: 'Files for a node’s free slots, each held under a lease (none: wait, or the run ended)' })
  lease(@Param('build') build: string, @ValidBody(LEASE) body: LeaseRequest, @CurrentClient() client: Client): Promise<LeaseAnswer> {
    return this.builds.lease(build, body, client);
  }

  @Post(':build/tasks/:task/renew')
  @HttpCode(HttpStatus.OK)
  @Access(SUBMITTERS)
  @ApiOperation({ summary: 'Renews a lease while the node runs the file (409: lost; stop the file, report nothing)' })
  renew(
    @Param('build') build: string,
    @Param('task') task: string,
    @ValidBody(RENEW) body: RenewRequest,
    @CurrentClient() client: Client,
  ): Promise<{ lease_ms: number }> {
    return this.builds.renew(build, task, body, client);
  }

  @Post(':build/tasks/:task/outcome')
  @HttpCode(HttpStatus.OK)
  @Access(SUBMITTERS)
  @ApiOperation({ summary: 'What the node saw of one attempt; recorded once, only while its lease holds' })
  report(
    @Param('build') build: string,
    @Param('task') task: string,
    @ValidBody(REPORT) body: AttemptReport,
    @CurrentClient() client: Client,
  ): Promise<ReportAnswer> {
    return this.builds.report(build, task, body, client);
  }

  /**
   * The build's run (as `GET /runs/:id`); `?cases=true` adds each file's test cases. A build id is its client's
   * (its CI's build id): readers find the run by its label, `GET /runs?label=build=<id>`.
   */
  @Get(':build')
  @Access(SUBMITTERS)
  async view(@Param('build') build: string, @ValidQuery(parseViewQuery) q: { cases: string }, @CurrentClient() client: Client): Promise<RunView> {
    return this.views.view(await this.builds.runIdOf(build, client), client, q.cases === 'true');
  }

  @Get(':build/junit.xml')
  @Access(SUBMITTERS)
  @Header('content-type', 'application/xml; charset=utf-8')
  async junit(@Param('build') build: string, @ValidQuery(NO_QUERY) _q: object, @CurrentClient() client: Client): Promise<string> {
    return this.views.junit(await this.builds.runIdOf(build, client), client);
  }
}
