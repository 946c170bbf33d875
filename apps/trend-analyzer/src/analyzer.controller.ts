import { Controller, Get, Header } from '@nestjs/common';
import { limitParam, NO_QUERY, queryParser } from '@fleet/app';
import { ValidQuery } from '@fleet/ops';
import { Access, READERS } from '@fleet/auth';
import { AnalysisService } from './analysis.service.js';
import { AnalyzerRepository } from './analyzer.repository.js';
import { renderHtml } from './html-report.js';
import { IngestService } from './ingest.service.js';
import { activeAlertsOf, buildReport, poolsOf, type Report, seriesOf } from './report.js';

const parseLimitQuery = queryParser({ limit: limitParam(100) });

@Controller()
export class AnalyzerController {
  constructor(
    private readonly analysis: AnalysisService,
    private readonly repo: AnalyzerRepository,
    private readonly ingest: IngestService,
  ) {}

  /** Active alerts and the latest alert events (raised, escalated, cleared), newest first. */
  @Get('alerts')
  @Access(READERS)
  async alerts(@ValidQuery(parseLimitQuery) q: { limit: number }) {
    return {
      active: activeAlertsOf(this.analysis.snapshot),
      recent: await this.repo.alertHistory(q.limit),
    };
  }

  @Get('metrics/summary')
  @Access(READERS)
  async summary(@ValidQuery(NO_QUERY) _q: object) {
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
  @Access(READERS)
  anomalies(@ValidQuery(parseLimitQuery) q: { limit: number }) {
    return { anomalies: this.analysis.anomalies.slice(-q.limit).reverse() };
  }

  @Get('trends')
  @Access(READERS)
  trends(@ValidQuery(NO_QUERY) _q: object) {
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
  @Access(READERS)
  async report(@ValidQuery(NO_QUERY) _q: object): Promise<Report> {
    return buildReport(this.analysis.snapshot, this.analysis.anomalies, await this.repo.alertHistory(100), await this.ingest.account());
  }

  /** 503 within a second when Redis is away; the ingest loop's state besides. */
  /** The report as a page: one SVG chart per metric and group (what `npm run report` saves). */
  @Get('report.html')
  @Access(READERS)
  @Header('content-type', 'text/html; charset=utf-8')
  async reportHtml(@ValidQuery(NO_QUERY) _q: object): Promise<string> {
    return renderHtml(await this.report({}));
  }

  @Get('health')
  @Access('public')
  async health(): Promise<{
    status: 'ok';
    ingest: { last_success_at: string | null; last_error: string | null };
    analysis: { samples_analysed: number; late_samples: number; passes: number; busy_ms: number };
  }> {
    await this.repo.ping();
    const h = this.ingest.health;
    return {
      status: 'ok',
      ingest: { last_success_at: h.lastSuccessAt ? new Date(h.lastSuccessAt).toISOString() : null, last_error: h.lastError },
      analysis: {
        samples_analysed: this.analysis.samplesAnalysed,
        late_samples: this.analysis.lateSamples,
        passes: this.analysis.passesMade,
        busy_ms: Math.round(this.analysis.busyMs),
      },
    };
  }
}
