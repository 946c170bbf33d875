#!/usr/bin/env node
// Example benchmark runner for `benchmark` tasks. It cannot download models (the fleet runs offline),
// so the model name only sizes the work; what it times is a real CPU kernel (a matrix product) per
// batch, `iterations` times per batch size. It prints one line per batch size, then its metrics as
// one JSON object on the last line, which is what the worker records.
import { parseArgs } from 'node:util';
import { matmul } from './kernel.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'tiny' },
    'batch-sizes': { type: 'string', default: '1' },
    precision: { type: 'string', default: 'fp32' },
    iterations: { type: 'string', default: '3' },
  },
});
const batchSizes = values['batch-sizes'].split(',').map(Number);
const iterations = Number(values.iterations);
if (batchSizes.some((b) => !Number.isInteger(b) || b < 1) || !Number.isInteger(iterations) || iterations < 1) {
  console.error(`bad arguments: batch sizes ${values['batch-sizes']}, iterations ${values.iterations}`);
  process.exit(2);
}
const Arr = values.precision === 'fp32' || values.precision === 'fp16' || values.precision === 'bf16' ? Float32Array : Float64Array;
const n = /tiny|small/i.test(values.model) ? 48 : 96;
const a = Arr.from({ length: n * n }, (_, i) => (i % 7) / 7);
const b = Arr.from({ length: n * n }, (_, i) => (i % 5) / 5);
const out = new Float64Array(n * n);

const cpuStart = process.cpuUsage();
const wallStart = process.hrtime.bigint();
let items = 0;
const latencies = [];
for (const batch of batchSizes) {
  for (let it = 0; it < iterations; it++) {
    const t0 = process.hrtime.bigint();
    for (let s = 0; s < batch; s++) matmul(a, b, n, out);
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    items += batch;
  }
  console.log(`batch ${batch}: ${iterations} iterations of ${batch} x ${n}x${n} ${values.precision} matmul`);
}
const wallMs = Number(process.hrtime.bigint() - wallStart) / 1e6;
const cpu = process.cpuUsage(cpuStart);
const mean = latencies.reduce((s, x) => s + x, 0) / latencies.length;
console.log(
  JSON.stringify({
    latency_ms: Number(mean.toFixed(3)),
    throughput_items_per_second: Number((items / (wallMs / 1000)).toFixed(1)),
    memory_mb: Number((process.memoryUsage().rss / 1048576).toFixed(1)),
    cpu_percent: Number((((cpu.user + cpu.system) / 1000 / wallMs) * 100).toFixed(1)),
    execution_time_seconds: Number((wallMs / 1000).toFixed(4)),
  }),
);
