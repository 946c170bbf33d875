import { applyDecorators, Controller, Get, Inject, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse } from '@nestjs/swagger';
import { HealthCheck, type HealthCheckResult, HealthCheckService, type HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { Access } from '@fleet/auth';

/** What an app must have working to serve: each check answers `up` or `down` with details (terminus indicators). */
export interface Readiness {
  checks(h: HealthIndicatorService): Array<() => Promise<HealthIndicatorResult>>;
}

export const READINESS = Symbol('READINESS');

/** Runs `probe` as the indicator `key`: up with what it returned, down with the error's message. */
export async function indicator(
  h: HealthIndicatorService,
  key: string,
  probe: () => Promise<Record<string, unknown> | void>,
): Promise<HealthIndicatorResult> {
  const session = h.check(key);
  try {
    return session.up((await probe()) ?? {});
  } catch (err) {
    return session.down({ message: err instanceof Error ? err.message : String(err) });
  }
}

/** Each check's result by its name, as terminus reports it: `up` or `down`, with what the check added. */
const checks = (example: Record<string, unknown>) => ({
  type: 'object',
  nullable: true,
  example,
  additionalProperties: {
    type: 'object',
    required: ['status'],
    properties: { status: { type: 'string', enum: ['up', 'down'] } },
    additionalProperties: true,
  },
});

/** terminus's health check result: the overall status, the checks up (`info`), down (`error`), and all (`details`). */
const healthResult = (ok: boolean) => {
  const redis = ok ? { redis: { status: 'up' } } : { redis: { status: 'down', message: 'Connection is closed.' } };
  return {
    type: 'object',
    required: ['status'],
    properties: {
      status: { type: 'string', enum: ok ? ['ok'] : ['error', 'shutting_down'], example: ok ? 'ok' : 'error' },
      info: checks(ok ? redis : {}),
      error: checks(ok ? {} : redis),
      details: checks(redis),
    },
  };
};

/**
 * `@HealthCheck()` as terminus gives it, without its own OpenAPI part: that part loads `@nestjs/swagger` by
 * `require` when the decorator runs, which in a bundled app reads a second copy of Nest, swagger and their
 * dependencies from node_modules (about 0.8 s of CPU at every app's start). The responses are documented here.
 */
const Health = () =>
  applyDecorators(
    HealthCheck({ noCache: true, swaggerDocumentation: false }),
    ApiOkResponse({ description: 'the checks passed', schema: healthResult(true) }),
  );

/**
 * Liveness and readiness, for a supervisor (Kubernetes probes, `npm start`, the tests):
 * - `GET /health/live`: the process answers; touches no dependency, so a Redis outage never gets it restarted.
 * - `GET /health/ready`: the app can do its work (Redis reachable, and what each app adds); 503 naming what is not.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(READINESS) private readonly readiness: Readiness,
  ) {}

  @Get('live')
  @Access('public')
  @Health()
  @ApiOperation({ summary: 'Liveness: the process answers (no dependency is checked)' })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @Access('public')
  @Health()
  @ApiOperation({ summary: 'Readiness: Redis reachable, and what this app needs to do its work' })
  @ApiServiceUnavailableResponse({ description: 'not ready: the body names each check that is down and why', schema: healthResult(false) })
  async ready(): Promise<HealthCheckResult> {
    try {
      return await this.health.check(this.readiness.checks(this.indicators));
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      // terminus's result (status, info, error, details), in the fleet's error shape besides.
      const result = err.getResponse() as HealthCheckResult;
      const errors = Object.entries(result.error ?? {}).map(([field, v]) => ({
        field,
        reason: describeDown(v),
      }));
      throw new ServiceUnavailableException({
        statusCode: 503,
        error: 'Service Unavailable',
        message: `not ready: ${errors.map((e) => `${e.field}: ${e.reason}`).join('; ')}`,
        errors,
        ...result,
      });
    }
  }
}

function describeDown(v: unknown): string {
  const message = (v as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : 'down';
}
