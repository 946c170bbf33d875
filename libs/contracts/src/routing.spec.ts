import { parseTask, type Task } from './task.js';
import { routeTask, unmetRequirements } from './routing.js';
import type { WorkerTemplate } from './worker-template.js';

const template = (pool: string, over: Partial<WorkerTemplate> = {}): WorkerTemplate => ({
  id: pool,
  pool,
  provider: 'LOCAL',
  resources: { cpu: 2, gpu: 0, threads: 2, memory_gb: 4 },
  capabilities: ['CPU', 'ONNX'],
  concurrency: 2,
  workdir: '/tmp',
  sources: [],
  setup_timeout_ms: 600_000,
  runners: { test: { '.mjs': ['node', '--test', '{test_file}'] } },
  ...over,
});
const cpu = template('cpu');
const gpu = template('gpu', {
  resources: { cpu: 4, gpu: 1, threads: 8, memory_gb: 16 },
  capabilities: ['GPU', 'CUDA', 'ONNX'],
  runners: { test: { '.mjs': ['node', '{test_file}'], '.py': ['python3', '{test_file}'] }, benchmark: ['bench'] },
});
const big = template('big', { resources: { cpu: 64, gpu: 0, threads: 128, memory_gb: 512 } });

const task = (input: object): Task => {
  const r = parseTask({ type: 'synthetic', name: 't', ...input });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};

describe('routeTask', () => {
  it.each([
    ['no requirements', {}, 'cpu'],
    ['cpu: true', { hardware_requirements: { cpu: true } }, 'cpu'],
    ['the seed CPU test (cpu, 2 threads)', { hardware_requirements: { cpu: true, threads: 2 } }, 'cpu'],
    ['4 threads: a big CPU pool rather than a GPU pool', { hardware_requirements: { threads: 4 } }, 'big'],
    ['8 threads and a GPU', { hardware_requirements: { threads: 8, gpu: 1 } }, 'gpu'],
    ['gpu: true', { hardware_requirements: { gpu: true } }, 'gpu'],
    ['gpu: false does not exclude GPU pools, and the cheapest wins', { hardware_requirements: { gpu: false } }, 'cpu'],
    ['a capability, case-insensitively', { hardware_requirements: { capabilities: ['cuda'] } }, 'gpu'],
    ['memory beyond the GPU pool', { hardware_requirements: { memory_gb: 64 } }, 'big'],
    ['a .py test only one pool can run', { type: 'test', config: { test_file: 'test_x.py' } }, 'gpu'],
    ['a benchmark only one pool can run', { type: 'benchmark', config: { model: 'm' } }, 'gpu'],
  ])('%s: %j → %s', (_label, input, pool) => {
    expect(routeTask(task(input), [big, gpu, cpu])).toEqual({ ok: true, pool });
  });

  it.each([
    ['too many GPUs', { hardware_requirements: { gpu: 2 } }, /cpu: gpu 0 < 2; gpu: gpu 1 < 2; big: gpu 0 < 2/],
    ['a missing capability', { hardware_requirements: { capabilities: ['TPU'] } }, /lacks capability TPU/],
    ['a file type nobody runs', { type: 'test', config: { test_file: 'a.rb' } }, /no test runner for ".rb" files/],
    ['more memory than any pool', { hardware_requirements: { memory_gb: 1024 } }, /big: memory_gb 512 < 1024/],
  ])('refuses %s with the reason per pool', (_label, input, reason) => {
    const r = routeTask(task(input), [cpu, gpu, big]);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(reason);
  });

  it('refuses everything when no pool is configured', () => {
    expect(routeTask(task({}), [])).toEqual({ ok: false, reason: 'no worker pools are configured' });
  });

  it('treats a GPU capability without a count as one GPU', () => {
    const labelled = template('labelled', { capabilities: ['GPU'] });
    expect(unmetRequirements({ gpu: true }, labelled)).toEqual([]);
    expect(unmetRequirements({ gpu: 2 }, labelled)).toEqual(['gpu 1 < 2']);
  });
});
