import { parseAnalyzerConfig } from '@fleet/config';
import type { SchedulerRegistry } from '@nestjs/schedule';
import type { AnalyzerSettings } from './analyzer-settings.js';
import type { AnalyzerRepository, SeriesPoint } from './analyzer.repository.js';
import { AnalysisService } from './analysis.service.js';

/**
 * The analysis's throughput (`/health`'s samples_analysed over busy_ms, which the benchmark divides) must never show
 * a pass's samples without its time. The repository here is a stand-in whose last read of a pass (the active alerts)
 * waits until the test lets it go, so the pass can be looked at while it is under way.
 */
function stubRepo(points: SeriesPoint[], failAtEnd = false): { repo: AnalyzerRepository; endReached: Promise<void>; release: () => void } {
  let reached: () => void = () => undefined;
  let release: () => void = () => undefined;
  const endReached = new Promise<void>((r) => (reached = r));
  const gate = new Promise<void>((r) => (release = r));
  const series = 'run_time_ms|pool=cpu';
  const repo = {
    counters: () => Promise.resolve({}),
    appendSamples: () => Promise.resolve(),
    claimPeriod: () => Promise.resolve(false),
    seriesVersions: () => Promise.resolve(new Map([[series, points.length]])),
    readSince: () => Promise.resolve(new Map([[series, { version: points.length, whole: true, appended: points }]])),
    activeAlerts: async () => {
      reached();
      await gate;
      if (failAtEnd) throw new Error('Redis went away');
      return new Map<string, Record<string, unknown>>();
    },
  };
  return { repo: repo as unknown as AnalyzerRepository, endReached, release: () => release() };
}

function service(repo: AnalyzerRepository): AnalysisService {
  const settings = { config: parseAnalyzerConfig({}).value } as unknown as AnalyzerSettings;
  return new AnalysisService(settings, repo, {} as SchedulerRegistry);
}

const points: SeriesPoint[] = Array.from({ length: 12 }, (_, i) => ({ at: 1000 + i, value: 100 + (i % 3) }));

describe('the analysis accounts for its passes', () => {
  it('adds a pass`s samples and its time together, when the pass ends', async () => {
    const stub = stubRepo(points);
    const analysis = service(stub.repo);
    const pass = analysis.analyze();
    await stub.endReached;
    // Every sample of the pass has been checked by now, but the pass has not ended: nothing shows yet.
    expect({ samples: analysis.samplesAnalysed, busy: analysis.busyMs, passes: analysis.passesMade }).toEqual({ samples: 0, busy: 0, passes: 0 });
    stub.release();
    await pass;
    expect(analysis.samplesAnalysed).toBe(points.length);
    expect(analysis.busyMs).toBeGreaterThan(0);
    expect(analysis.passesMade).toBe(1);
  });

  it('counts the time and the samples of a pass that failed part way, but not the pass', async () => {
    const stub = stubRepo(points, true);
    const analysis = service(stub.repo);
    const pass = analysis.analyze();
    await stub.endReached;
    stub.release();
    await pass;
    expect(analysis.samplesAnalysed).toBe(points.length);
    expect(analysis.busyMs).toBeGreaterThan(0);
    expect(analysis.passesMade).toBe(0);
  });
});
