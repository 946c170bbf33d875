import { Inject, Injectable } from '@nestjs/common';
import type { HealthIndicatorService } from '@nestjs/terminus';
import { type AnalyzerSettings, ANALYZER_SETTINGS } from './analyzer-settings.js';
import { AppMetrics, indicator, type Readiness } from '@fleet/ops';
import { AnalysisService } from './analysis.service.js';
import { AnalyzerRepository } from './analyzer.repository.js';
import { IngestService } from './ingest.service.js';
import { activeAlertsOf } from './report.js';

/**
 * Ready when Redis answers and the analyzers keep up: no more than TREND_ANALYZER_READY_MAX_LAG timing events
 * wait undelivered to the consumer group (Redis's own lag count).
 */
@Injectable()
export class AnalyzerReadiness implements Readiness {
  constructor(
    @Inject(AnalyzerRepository) private readonly repo: AnalyzerRepository,
    @Inject(ANALYZER_SETTINGS) private readonly settings: AnalyzerSettings,
  ) {}

  checks(h: HealthIndicatorService) {
    return [
      () => indicator(h, 'redis', () => this.repo.ping()),
      () =>
        indicator(h, 'ingest', async () => {
          const { lag, pending } = await this.repo.account();
          if (lag !== null && lag > this.settings.readyMaxLag)
            throw new Error(`${lag} timing events wait unread (more than ${this.settings.readyMaxLag})`);
          return { lag, pending, max_lag: this.settings.readyMaxLag };
        }),
    ];
  }
}

/** The analyzer's gauges: the events account (read from Redis at scrape time) and active alerts by severity. */
@Injectable()
export class AnalyzerMetrics {
  constructor(
    @Inject(AppMetrics) metrics: AppMetrics,
    @Inject(IngestService) ingest: IngestService,
    @Inject(AnalysisService) analysis: AnalysisService,
  ) {
    metrics.gauge(
      'fleet_timing_events',
      'Timing events written to the stream, by where they stand: pending (delivered, not committed), unread, lost (trimmed before any analyzer read them)',
      ['state'],
      async (g) => {
        g.reset();
        const a = await ingest.account().catch(() => undefined);
        if (!a) return;
        g.set({ state: 'pending' }, a.events.pending);
        g.set({ state: 'unread' }, a.events.unread);
        g.set({ state: 'lost' }, a.events.lost_before_read);
      },
    );
    metrics.gauge(
      'fleet_timing_data_losses',
      'Losses of Redis data the analyzer noticed (its consumer group gone), as kept in the gaps list',
      [],
      async (g) => {
        const a = await ingest.account().catch(() => undefined);
        if (a) g.set(a.events.gaps.length);
      },
    );
    metrics.gauge('fleet_alerts_active', 'Active regression alerts by severity', ['severity'], (g) => {
      const active = activeAlertsOf(analysis.snapshot);
      for (const severity of ['warning', 'critical']) g.set({ severity }, active.filter((a) => a.severity === severity).length);
    });
  }
}
