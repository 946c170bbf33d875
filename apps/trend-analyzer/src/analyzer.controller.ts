import { Controller, DefaultValuePipe, Get, ParseIntPipe, Query } from '@nestjs/common';
import { AnalysisService } from './analysis.service.js';
import { AnalyzerRepository } from './analyzer.repository.js';
import { IngestService } from './ingest.service.js';
import { activeAlertsOf, buildReport, poolsOf, type Report, seriesOf } from './report.js';

@Controller()
export class AnalyzerController {
  constructor(
    private readonly analysis: AnalysisService,
    private readonly repo: AnalyzerRepository,
    private readonly ingest: IngestService,
  ) {}

  /** Active alerts and the latest alert events (raised, escalated, cleared), newest first. */
  @Get('alerts')
  async alerts(@Query('limit', new DefaultValuePipe(100), ParseIntPipe) limit: number) {
    return {
      active: activeAlertsOf(this.analysis.snapshot),
      recent: await this.repo.alertHistory(Math.min(Math.max(limit, 1), 1000)),
    };
  }

  @Get('metrics/summary')
  async summary() {
    const snapshot = this.analysis.snapshot;
    const { events, counters } = await this.ingest.account();
    return {
      generated_at: new Date(snapshot.at || Date.now()).toISOString(),
      events,
      pools: poolsOf(counters),
      series: snapshot.series.map(({ metric, group, summary }) => ({ metric, group, ...summary })),
    };
  }

  @Get('anomalies')
  anomalies(@Query('limit', new DefaultValuePipe(100), ParseIntPipe) limit: number) {
    return { anomalies: this.analysis.anomalies.slice(-Math.min(Math.max(limit, 1), 1000)).reverse() };
  }

  @Get('trends')
  trends() {
    return {
      trends: seriesOf(this.analysis.snapshot, []).map(({ metric, group, direction, trend }) => ({
        metric,
        group,
        better: direction,
        ...trend,
      })),
    };
  }

  @Get('report')
  async report(): Promise<Report> {
    return buildReport(this.analysis.snapshot, this.analysis.anomalies, await this.repo.alertHistory(100), await this.ingest.account());
  }

  /** 503 within a second when Redis is away; the ingest loop's state besides. */
  @Get('health')
  async health(): Promise<{ status: 'ok'; ingest: { last_success_at: string | null; last_error: string | null } }> {
    await this.repo.ping();
    const h = this.ingest.health;
    return { status: 'ok', ingest: { last_success_at: h.lastSuccessAt ? new Date(h.lastSuccessAt).toISOString() : null, last_error: h.lastError } };
  }
}
