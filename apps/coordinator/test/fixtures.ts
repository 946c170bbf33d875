import { cpuTemplate, SEED_TASKS, SEED_TEST_FILES } from '@fleet/testing';

export { SEED_TASKS };

/** The seed's two templates (with its unused keys) plus the runners this fleet needs. */
export function seedTemplates(): Record<string, unknown> {
  return {
    'cpu-worker': cpuTemplate({
      instance_type: 'local',
      startup_script: 'python worker.py --coordinator {coordinator_url} --worker-type cpu',
      resources: { cpu: 2, memory_gb: 4, disk_gb: 10 },
      capabilities: ['CPU', 'ONNX'],
      runners: {
        test: { '.mjs': ['node', '--test', '{test_file}'], '.py': ['python3', '{test_file}'] },
        benchmark: ['node', 'bench.mjs', '--model', '{model}', '--batch-sizes', '{batch_sizes}', '--iterations', '{iterations}'],
      },
    }),
    'gpu-worker': { provider: 'MANUAL', resources: { cpu: 4, memory_gb: 16, disk_gb: 50, gpu: 1 }, capabilities: ['GPU', 'CUDA', 'ONNX'] },
  };
}

/** Files the tasks run: the seed's (a Python test, a failing node test, a benchmark script), and more node tests. */
export const TEST_FILES: Record<string, string> = {
  ...SEED_TEST_FILES,
  'passes.test.mjs': "import { test } from 'node:test';\ntest('passes', () => {});\n",
  // Starts a grandchild that would run for ever and records its pid, then hangs: only a tree kill ends both.
  'hangs.test.mjs': [
    "import { spawn } from 'node:child_process';",
    "import { writeFileSync } from 'node:fs';",
    "const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });",
    "writeFileSync(process.env.FLEET_TASK_ID + '.pid', String(child.pid));",
    'setInterval(() => {}, 1000);',
    '',
  ].join('\n'),
};

export function seedConfigFiles(): Record<string, string | object> {
  return { 'worker_templates.json': seedTemplates(), 'test_tasks.json': SEED_TASKS, ...TEST_FILES };
}
