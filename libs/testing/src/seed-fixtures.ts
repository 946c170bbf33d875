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

/**
 * Files the seed's tasks run in tests: a passing Python test under the seed's file name, a node test that
 * fails on purpose, and a benchmark script that prints fixed metrics as JSON (run as `node bench.mjs`).
 */
export const SEED_TEST_FILES: Record<string, string> = {
  'test_cpu_backend.py':
    'import os, unittest\nclass CpuBackend(unittest.TestCase):\n    def test_cpu(self):\n        self.assertGreaterEqual(os.cpu_count() or 0, 1)\nif __name__ == "__main__":\n    unittest.main()\n',
  'fails.test.mjs': "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\ntest('fails', () => assert.equal(1 + 1, 3));\n",
  'bench.mjs':
    "const a = process.argv.slice(2);\nconst arg = (n) => a[a.indexOf('--' + n) + 1];\nconsole.log('running ' + arg('model'));\nconsole.log(JSON.stringify({ latency_ms: 12.5, throughput_items_per_second: 80, iterations: Number(arg('iterations')) }));\n",
};
