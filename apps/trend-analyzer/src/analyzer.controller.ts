import { Controller, DefaultValuePipe, Get, ParseIntPipe, Query } from '@nestjs/common';
import { AnalysisService } from './analysis.service.js';
import { AnalyzerRepository } from './analyzer.repository.js';
import { buildReport, type Report } from './report.js';

@Controller()
export class AnalyzerController {
  constructor(
    private readonly analysis: AnalysisService,
    private readonly repo: AnalyzerRepository,
  ) {}

  /** Active alerts and the latest alert events (raised, escalated, cleared), newest first. */
  @Get('alerts')
  async alerts(@Query('limit', new DefaultValuePipe(100), ParseIntPipe) limit: number) {
    return {
      active: buildReport(this.analysis.snapshot, [], [], 0).alerts.active,
      recent: await this.repo.alertHistory(Math.min(Math.max(limit, 1), 1000)),
    };
  }

  @Get('metrics/summary')
  async summary() {
    const r = buildReport(this.analysis.snapshot, [], [], await this.repo.streamLength());
    return {
      generated_at: r.generated_at,
      events: r.events,
      pools: r.pools,
      series: r.series.map(({ metric, group, summary }) => ({ metric, group, ...summary })),
    };
  }

  @Get('anomalies')
  anomalies(@Query('limit', new DefaultValuePipe(100), ParseIntPipe) limit: number) {
    return { anomalies: this.analysis.anomalies.slice(-Math.min(Math.max(limit, 1), 1000)).reverse() };
  }

  @Get('trends')
  trends() {
    return {
      trends: buildReport(this.analysis.snapshot, [], [], 0).series.map(({ metric, group, direction, trend }) => ({
        metric,
        group,
        better: direction,
        ...trend,
      })),
    };
  }

  @Get('report')
  async report(): Promise<Report> {
    return buildReport(this.analysis.snapshot, this.analysis.anomalies, await this.repo.alertHistory(100), await this.repo.streamLength());
  }

  @Get('health')
  async health(): Promise<{ status: 'ok' }> {
    await this.repo.ping();
    return { status: 'ok' };
  }
}
