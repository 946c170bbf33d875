// The kernel the example benchmark times, checked for correctness.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matmul } from '../benchmarks/kernel.mjs';

test('identity leaves a matrix unchanged', () => {
  const n = 4;
  const a = Float64Array.from({ length: n * n }, (_, i) => i + 1);
  const id = Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
  assert.deepEqual([...matmul(a, id, n)], [...a]);
});

test('2x2 product', () => {
  assert.deepEqual([...matmul(Float64Array.of(1, 2, 3, 4), Float64Array.of(5, 6, 7, 8), 2)], [19, 22, 43, 50]);
});
