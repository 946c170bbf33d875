// The raw BullMQ baselines: one process, one Worker with an inline processor. Bare: returns 1. Feature-equal
// (`equal`): keeps finished jobs as the fleet's workers do and returns a result object of the fleet's size and shape, as the fleet's worker stores for a no-op
// task. Prints "ready" once its connection is up, so the benchmark starts the clock only when every process
// is waiting for work.
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { loadRetention } from '@fleet/config';
import { retentionOptions } from '@fleet/redis';

const [url, prefix, queue, concurrency, mode] = process.argv.slice(2) as [string, string, string, string, string | undefined];
const connection = new Redis(url, { maxRetriesPerRequest: null });
const result = mode === 'equal' ? () => ({ outcome: 'completed', duration_ms: 0, metrics: {}, worker_id: 'raw-equal-w0' }) : () => 1;
// Feature-equal: the fleet's workers keep finished jobs by age and count (the default TASK_RETAIN_*).
const retention = mode === 'equal' ? retentionOptions(loadRetention({})) : {};
const worker = new Worker(queue, async () => result(), { connection, prefix, concurrency: Number(concurrency), ...retention });
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void worker.close().then(() => connection.quit().then(() => process.exit(0)));
});
