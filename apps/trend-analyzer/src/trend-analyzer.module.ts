import { type DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { AuthModule } from '@fleet/auth';
import { opsModuleParts } from '@fleet/ops';
import { AnalyzerMetrics, AnalyzerReadiness } from './analyzer-ops.js';
import { type AnalyzerSettings, ANALYZER_SETTINGS } from './analyzer-settings.js';
import { AnalysisService } from './analysis.service.js';
import { AnalyzerController } from './analyzer.controller.js';
import { AnalyzerLifecycle } from './analyzer-lifecycle.js';
import { AnalyzerRepository } from './analyzer.repository.js';
import { IngestService } from './ingest.service.js';

@Module({})
export class TrendAnalyzerModule {
  static forRoot(settings: AnalyzerSettings): DynamicModule {
    const ops = opsModuleParts(AnalyzerReadiness);
    return {
      module: TrendAnalyzerModule,
      imports: [
        ScheduleModule.forRoot(),
        AuthModule.forRoot({ security: settings.security, redisUrl: settings.redisUrl, prefix: settings.prefix, app: 'trend-analyzer' }),
        ...ops.imports,
      ],
      controllers: [AnalyzerController, ...ops.controllers],
      providers: [
        ...ops.providers,
        { provide: ANALYZER_SETTINGS, useValue: settings },
        AnalyzerRepository,
        IngestService,
        AnalysisService,
        AnalyzerLifecycle,
        AnalyzerMetrics,
      ],
    };
  }
}
