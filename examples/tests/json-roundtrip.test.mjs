// A real node:test file the example fleet runs: JSON survives a round trip, byte for byte.
import assert from 'node:assert/strict';
import { test } from 'node:test';

test('nested values survive JSON', () => {
  const value = { name: 'task', priority: 5, config: { batch_sizes: [1, 2], precision: 'fp32' }, labels: {} };
  assert.deepEqual(JSON.parse(JSON.stringify(value)), value);
});

test('non-finite numbers become null', () => {
  assert.equal(JSON.stringify({ x: Number.NaN }), '{"x":null}');
});
