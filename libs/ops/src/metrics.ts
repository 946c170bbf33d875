import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces } from '@nestjs/swagger';
import { AppMetrics } from '@fleet/metrics';
import { Access, READERS } from '@fleet/auth';

// The registry lives in @fleet/metrics (prom-client only), so a process without HTTP (a worker started by a
// resource manager) records metrics without loading the HTTP surface (swagger, terminus).
export { AppMetrics, DURATION_BUCKETS_S } from '@fleet/metrics';

/** `GET /metrics`: the Prometheus text format (read role, like every other read; Prometheus sends a bearer token). */
@Controller()
export class MetricsController {
  constructor(@Inject(AppMetrics) private readonly metrics: AppMetrics) {}

  @Get('metrics')
  @Access(READERS)
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format 0.0.4)' })
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'every metric of this app', content: { 'text/plain': { schema: { type: 'string' } } } })
  metricsText(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
