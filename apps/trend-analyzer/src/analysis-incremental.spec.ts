import { parseAnalyzerConfig } from '@fleet/config';
import type { SchedulerRegistry } from '@nestjs/schedule';
import { detectAnomalies } from '@fleet/stats';
import type { AnalyzerSettings } from './analyzer-settings.js';
import type { AnalyzerRepository, SeriesPoint } from './analyzer.repository.js';
import { AnalysisService } from './analysis.service.js';

/**
 * A pass builds a series' points and values from what the last pass left and the new samples only. Here a
 * stand-in for the repository serves one series as Redis would (the samples since the version the analysis knows,
 * or the whole list when more came than it holds), in chunks that come in time order, out of it, and larger than
 * the window; after every pass the analysis must hold what a pass reading the whole window would (its last
 * `history_window` samples in time order), and have found the anomalies such a pass finds among the new ones and
 * among those that came late (finished before the newest already checked), each checked where it stands in time.
 */
const SERIES = 'queue_wait_ms|pool=cpu';
const WINDOW = 40;

function stubRepo(all: SeriesPoint[]): AnalyzerRepository {
  const repo = {
    counters: () => Promise.resolve({}),
    appendSamples: () => Promise.resolve(),
    claimPeriod: () => Promise.resolve(false),
    activeAlerts: () => Promise.resolve(new Map<string, Record<string, unknown>>()),
    transitionAlert: () => Promise.resolve(true),
    seriesVersions: () => Promise.resolve(new Map([[SERIES, all.length]])),
    readSince: (known: ReadonlyMap<string, number>) => {
      const version = all.length;
      const since = version - (known.get(SERIES) ?? -1);
      const whole = (known.get(SERIES) ?? -1) < 0 || since >= WINDOW;
      const appended = whole ? all.slice(-WINDOW) : all.slice(version - since);
      return Promise.resolve(new Map([[SERIES, { version, whole, appended }]]));
    },
  };
  return repo as unknown as AnalyzerRepository;
}

/** A small deterministic generator (mulberry32), so a failure can be run again as it was. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the analysis pass, built from the last one', () => {
  it.each([1, 2, 3, 4])('holds and checks what a pass over the whole window would (seed %i)', async (seed) => {
    const rnd = random(seed);
    const config = parseAnalyzerConfig({ history_window: WINDOW }).value;
    const all: SeriesPoint[] = [];
    const analysis = new AnalysisService({ config } as unknown as AnalyzerSettings, stubRepo(all), {} as SchedulerRegistry);
    // The reference: each pass sorts the whole window and checks the samples after the last one seen.
    let seen = -Infinity;
    const expected: Array<{ at: number; value: number; method: string }> = [];
    let at = 1000;
    let outOfOrder = 0;
    let late = 0;
    let lateAnomalies = 0;
    let checked = 0;
    for (let pass = 0; pass < 60; pass++) {
      const size = rnd() < 0.1 ? WINDOW + 5 : 1 + Math.floor(rnd() * 12);
      // In the middle third, now and then one sample of a chunk (the first one, at times) finished a little before
      // samples already appended: workers finish out of order. Before and after, every sample comes in time order.
      const lateAt = pass >= 20 && pass < 40 && rnd() < 0.3 ? Math.floor(rnd() * size) : -1;
      const chunk: SeriesPoint[] = [];
      for (let k = 0; k < size; k++) {
        at += 1 + Math.floor(rnd() * 3);
        if (k === lateAt) outOfOrder++;
        chunk.push({
          at: k === lateAt ? at - 4 - Math.floor(rnd() * 16) : at,
          // (Half the samples that come late are outliers: the check of late samples has something to find.)
          value: (k === lateAt && rnd() < 0.5) || rnd() < 0.05 ? 500 + Math.floor(rnd() * 100) : 100 + Math.floor(rnd() * 5),
        });
      }
      all.push(...chunk);
      await analysis.analyze();

      const points = [...all.slice(-WINDOW)].sort((a, b) => a.at - b.at);
      const values = points.map((p) => p.value);
      // The chunk's samples that finished at or before the newest one already checked: each checked where it
      // stands in time, in the order they came.
      if (seen > -Infinity) {
        for (const p of chunk) {
          const i = points.indexOf(p);
          if (p.at > seen || i < 0) continue;
          late++;
          for (const a of detectAnomalies(values, i, config.anomaly)) {
            expected.push({ at: p.at, value: a.value, method: a.method });
            lateAnomalies++;
          }
        }
      }
      const first = points.findIndex((p) => p.at > seen);
      if (first >= 0) {
        seen = points[points.length - 1].at;
        checked += points.length - first;
        for (let i = first; i < points.length; i++) {
          for (const a of detectAnomalies(values, i, config.anomaly)) expected.push({ at: points[i].at, value: a.value, method: a.method });
        }
      }
      const held = analysis.snapshot.series.find((s) => s.series === SERIES);
      expect(held?.points.map((p) => [p.at, p.value])).toEqual(points.map((p) => [p.at, p.value]));
    }
    // The scenario did what it is for: samples out of order, and anomalies to find.
    expect(outOfOrder).toBeGreaterThan(2);
    expect(expected.length).toBeGreaterThan(5);
    expect(lateAnomalies).toBeGreaterThan(0);
    expect(analysis.anomalies.map((a) => ({ at: a.at, value: a.value, method: a.method }))).toEqual(expected);
    // Every sample that came late was checked and counted, among the samples analysed.
    expect(analysis.lateSamples).toBe(late);
    expect(analysis.samplesAnalysed).toBe(checked + late);
  });
});
