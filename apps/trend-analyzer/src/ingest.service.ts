import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AnalyzerSettings } from '@fleet/config';
import { decodeTimingEvent } from '@fleet/contracts';
import { ANALYZER_SETTINGS } from './analyzer-settings.js';
import { AnalyzerRepository, type StreamEntry } from './analyzer.repository.js';
import { type Sample, samplesOf } from './event-samples.js';

const BATCH = 1000;
const BLOCK_MS = 1000;

/**
 * Reads the timings stream through the consumer group: first what this consumer left unacknowledged,
 * then new entries (blocking reads), and now and then what dead consumers left pending (XAUTOCLAIM).
 * Malformed entries are counted and acknowledged, never fatal.
 */
@Injectable()
export class IngestService {
  private readonly logger = new Logger(IngestService.name);
  private running = false;
  private loop: Promise<void> | undefined;
  private malformedLogged = 0;

  constructor(
    @Inject(ANALYZER_SETTINGS) private readonly settings: AnalyzerSettings,
    private readonly repo: AnalyzerRepository,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let lastClaim = 0;
    for (let pending = await this.repo.ownPending(BATCH); pending.length > 0 && this.running; pending = await this.repo.ownPending(BATCH)) {
      await this.process(pending);
    }
    while (this.running) {
      try {
        if (Date.now() - lastClaim >= this.settings.config.claimIdleMs / 2) {
          lastClaim = Date.now();
          const claimed = await this.repo.claimAbandoned(BATCH);
          if (claimed.length > 0) {
            this.logger.log(`took over ${claimed.length} event(s) a stopped analyzer left unacknowledged`);
            await this.process(claimed);
          }
        }
        const batch = await this.repo.next(BATCH, BLOCK_MS);
        if (batch.length > 0) await this.process(batch);
      } catch (err) {
        if (!this.running) break;
        this.logger.warn(`reading timings failed: ${(err as Error).message}; retrying`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Turns a batch into samples and counters and commits them with the batch's acknowledgement. */
  async process(entries: StreamEntry[]): Promise<void> {
    const samples: Sample[] = [];
    const counters = new Map<string, number>();
    const inc = (name: string) => counters.set(name, (counters.get(name) ?? 0) + 1);
    for (const [id, fields] of entries) {
      const r = decodeTimingEvent(fields);
      if (!r.ok) {
        inc('malformed');
        if (this.malformedLogged++ < 10) this.logger.warn(`skipping malformed timing event ${id}: ${r.error}`);
        continue;
      }
      inc('events');
      inc(`${r.event.outcome === 'completed' ? 'completed' : 'failed'}:${r.event.pool}`);
      for (const s of samplesOf(r.event, this.settings.config)) samples.push(s);
    }
    await this.repo.commit({ ids: entries.map((e) => e[0]), samples, counters });
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}
