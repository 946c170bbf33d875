import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AnalysisService } from './analysis.service.js';
import { AnalyzerRepository } from './analyzer.repository.js';
import { IngestService } from './ingest.service.js';

@Injectable()
export class AnalyzerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    private readonly repo: AnalyzerRepository,
    private readonly ingest: IngestService,
    private readonly analysis: AnalysisService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.repo.open();
    await this.analysis.resume();
    this.ingest.onDataLost(() => this.analysis.resume());
    this.ingest.start();
    this.analysis.schedule();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.ingest.stop();
    await this.analysis.stop();
    await this.repo.close();
  }
}
