import { parseBenchmarkMetrics } from './benchmark-task.handler.js';

describe('parseBenchmarkMetrics', () => {
  it.each([
    ['the last JSON line', 'warming up\n{"x": 1}\nbatch 1 done\n{"latency_ms": 2.5, "note": "fast", "NaN": null}\n', { latency_ms: 2.5 }],
    ['no JSON at all', 'just text\n', undefined],
    ['a JSON array', '[1, 2]\n', undefined],
    ['broken JSON', '{"latency_ms": \n', undefined],
  ])('%s', (_label, stdout, metrics) => {
    expect(parseBenchmarkMetrics(stdout)).toEqual(metrics);
  });
});
