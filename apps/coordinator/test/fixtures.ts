import { cpuTemplate, type ConfigDir, makeConfigDir } from '@fleet/testing';

/** The seed's two tasks, exactly as its test_tasks.json has them. */
export const SEED_TASKS = {
  tasks: [
    {
      type: 'test',
      name: 'CPU Backend Test',
      priority: 5,
      config: { test_file: 'test_cpu_backend.py', hardware_requirements: { cpu: true, threads: 2 } },
    },
    {
      type: 'benchmark',
      name: 'Small BERT Benchmark',
      priority: 10,
      config: { model: 'prajjwal1/bert-tiny', batch_sizes: [1, 2], precision: 'fp32', iterations: 3, hardware_requirements: { cpu: true } },
    },
  ],
};

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

/** Files the tasks run: a passing Python test (the seed's file name), node tests, and a benchmark script. */
export const TEST_FILES: Record<string, string> = {
  'test_cpu_backend.py': [
    'import os, unittest',
    'class CpuBackend(unittest.TestCase):',
    '    def test_cpu(self):',
    '        self.assertGreaterEqual(os.cpu_count() or 0, 1)',
    "if __name__ == '__main__':",
    '    unittest.main()',
    '',
  ].join('\n'),
  'passes.test.mjs': "import { test } from 'node:test';\ntest('passes', () => {});\n",
  'fails.test.mjs':
    "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\ntest('fails', () => { assert.equal(1 + 1, 3); });\n",
  // Starts a grandchild that would run for ever and records its pid, then hangs: only a tree kill ends both.
  'hangs.test.mjs': [
    "import { spawn } from 'node:child_process';",
    "import { writeFileSync } from 'node:fs';",
    "const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });",
    "writeFileSync(process.env.FLEET_TASK_ID + '.pid', String(child.pid));",
    'setInterval(() => {}, 1000);',
    '',
  ].join('\n'),
  'bench.mjs': [
    'const args = process.argv.slice(2);',
    "const arg = (name) => args[args.indexOf('--' + name) + 1];",
    "console.log('running ' + arg('model'));",
    "console.log(JSON.stringify({ latency_ms: 12.5, throughput_items_per_second: 80, iterations: Number(arg('iterations')) }));",
    '',
  ].join('\n'),
};

export function seedConfigDir(): ConfigDir {
  return makeConfigDir({ 'worker_templates.json': seedTemplates(), 'test_tasks.json': SEED_TASKS, ...TEST_FILES });
}
