import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from './config-error.js';
import { parseWorkerTemplates } from './worker-templates.js';

const base = mkdtempSync(join(tmpdir(), 'templates-spec-'));
const problemsOf = (raw: unknown): string[] => {
  try {
    parseWorkerTemplates(raw, base);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.field}: ${p.reason}`);
    throw err;
  }
  throw new Error('expected a ConfigError');
};

describe('worker_templates.json', () => {
  it('accepts the seed file, fills defaults, and reports its unused keys as ignored', () => {
    const { value, warnings } = parseWorkerTemplates(
      {
        'cpu-worker': {
          provider: 'LOCAL',
          instance_type: 'local',
          startup_script: 'python worker.py --coordinator {coordinator_url} --worker-type cpu',
          resources: { cpu: 2, memory_gb: 4, disk_gb: 10 },
          capabilities: ['CPU', 'ONNX'],
        },
      },
      base,
    );
    expect(value).toEqual([
      {
        id: 'cpu-worker',
        pool: 'cpu-worker',
        provider: 'LOCAL',
        resources: { cpu: 2, gpu: 0, threads: 2, memory_gb: 4, disk_gb: 10 },
        capabilities: ['CPU', 'ONNX'],
        concurrency: 2,
        workdir: base,
        sources: [],
        setup_timeout_ms: 600_000,
        runners: { test: expect.objectContaining({ '.mjs': ['node', '--test', '{test_file}'] }) },
      },
    ]);
    expect(warnings).toEqual([expect.stringMatching(/template cpu-worker: instance_type, startup_script ignored/)]);
  });

  it('lets a template name its pool and add runners', () => {
    const { value } = parseWorkerTemplates(
      { big: { pool: 'cpu', runners: { test: { '.py': ['python3', '{test_file}'] }, benchmark: ['b', '{model}'] } } },
      base,
    );
    expect(value[0]).toMatchObject({
      pool: 'cpu',
      runners: { test: { '.py': ['python3', '{test_file}'], '.mjs': expect.any(Array) }, benchmark: ['b', '{model}'] },
    });
  });

  it.each([
    ['a wrong type', { a: { resources: { cpu: 'two' } } }, 'template a: resources.cpu: must be a whole number of CPUs'],
    ['a negative count', { a: { resources: { cpu: 2, gpu: -1 } } }, 'template a: resources.gpu: must be at least 0'],
    ['a cloud provider', { a: { provider: 'AWS' } }, 'template a: provider: must be LOCAL'],
    ['an unknown key', { a: { colour: 'red' } }, 'template a: colour: unknown field'],
    ['a shell string as a runner', { a: { runners: { benchmark: 'node bench.js' } } }, 'template a: runners.benchmark: must be an array of strings'],
    ['an unknown placeholder', { a: { runners: { benchmark: ['b', '{modle}'] } } }, 'template a: runners.benchmark: unknown placeholder {modle}'],
    ['a bad extension key', { a: { runners: { test: { mjs: ['node'] } } } }, 'template a: runners.test.mjs: invalid key'],
    ['an invalid pool name', { 'CPU Pool': {} }, 'template CPU Pool: pool: "CPU Pool" is not a valid pool name'],
    ['two templates for one pool', { a: { pool: 'x' }, b: { pool: 'x' } }, 'template b: pool: pool "x" is already served by template a'],
    ['a missing workdir', { a: { workdir: 'nowhere' } }, 'template a: workdir:'],
    ['zero concurrency', { a: { concurrency: 0 } }, 'template a: concurrency: must be at least 1'],
    [
      'a source pattern with credentials',
      { a: { sources: ['https://me:pw@git.example.com/*'] } },
      'template a: sources[0]: must not hold credentials',
    ],
    ['a source pattern that is not a URL', { a: { sources: ['git.example.com/org/*'] } }, 'template a: sources[0]: must be a URL'],
    ['a setup as a shell string', { a: { setup: 'npm ci' } }, 'template a: setup: must be an array of strings'],
    ['a setup with an unknown placeholder', { a: { setup: ['make', '{test_file}'] } }, 'template a: setup: unknown placeholder {test_file}'],
  ])('refuses %s, naming the template and the field', (_label, raw, problem) => {
    expect(problemsOf(raw).some((p) => p.startsWith(problem))).toBe(true);
  });

  it.each([
    [[], '(file): must be a JSON object'],
    [{}, '(file): must define at least one template'],
  ])('refuses the file %p', (raw, problem) => {
    expect(problemsOf(raw)[0]).toContain(problem);
  });

  it('reports every problem at once', () => {
    expect(problemsOf({ a: { resources: { cpu: 0 } }, b: { provider: 'GCP' } })).toHaveLength(2);
  });
});
