/**
 * Sorted copies without a new buffer each time. A typed array sorts numerically in native code, but each new one
 * of more than a few values gets its own off-heap buffer, which cost more than the sort itself for the short
 * windows the analyzer checks per sample. Internal to this library: a copy is valid until the next call for the
 * same `slot` (two slots for the two samples a test compares).
 */
const buffers = [new Float64Array(256), new Float64Array(256)];

/** xs[from, to) sorted (all of xs by default), in the buffer of `slot`. */
export function sortedCopy(xs: ArrayLike<number>, from = 0, to = xs.length, slot: 0 | 1 = 0): Float64Array {
  const n = to - from;
  let buffer = buffers[slot];
  if (buffer.length < n) buffer = buffers[slot] = new Float64Array(Math.max(n, 2 * buffer.length));
  const view = buffer.subarray(0, n);
  // (set() copies a whole array natively, faster than a loop; a part of one is copied by hand.)
  if (from === 0 && to === xs.length) view.set(xs);
  else for (let k = 0; k < n; k++) view[k] = xs[from + k];
  return view.sort();
}
