/**
 * Sorted copies without a new buffer each time. A typed array sorts numerically in native code, but each new one
 * of more than a few values gets its own off-heap buffer, which cost more than the sort itself for the short
 * windows the analyzer checks per sample. Internal to this library: a copy is valid until the next call for the
 * same `slot` (two slots for the two samples a test compares).
 */
const buffers = [new Float64Array(256), new Float64Array(256)];

export function sortedCopy(xs: ArrayLike<number>, slot: 0 | 1 = 0): Float64Array {
  let buffer = buffers[slot];
  if (buffer.length < xs.length) buffer = buffers[slot] = new Float64Array(Math.max(xs.length, 2 * buffer.length));
  const view = buffer.subarray(0, xs.length);
  view.set(xs);
  return view.sort();
}
