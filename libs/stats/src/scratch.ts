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

/** The first index of sorted[0, n) whose value is not below v (with `above`: whose value is above v). */
export function boundOf(sorted: ArrayLike<number>, n: number, v: number, above: boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < v || (above && sorted[mid] === v)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Up to this many values leaving and entering: moved one by one; more, and the window is sorted afresh. */
const MOST_MOVED = 4;

/**
 * A sorted window that follows a scan along one series: when the window asked for has moved on by a few values
 * since the last call on the same array, the values that left are taken out and those that came in are put in
 * (a binary search and a shift each) rather than the whole window sorted again. The result equals sortedCopy's:
 * a zero or a NaN moving (where a typed sort orders -0 before +0 and puts NaN last) falls back to a sort. The
 * array must not change between calls; the returned view is valid until the next call.
 */
export class SlidingSorted {
  private buffer = new Float64Array(64);
  private xs: ArrayLike<number> | undefined;
  private from = 0;
  private to = 0;

  /** xs[from, to) sorted. */
  of(xs: ArrayLike<number>, from: number, to: number): Float64Array {
    const n = to - from;
    if (this.buffer.length < n) {
      this.buffer = new Float64Array(Math.max(n, 2 * this.buffer.length));
      this.xs = undefined;
    }
    if (!(xs === this.xs && from >= this.from && to >= this.to && from <= this.to && this.slide(xs, from, to))) {
      const view = this.buffer.subarray(0, n);
      for (let k = 0; k < n; k++) view[k] = xs[from + k];
      view.sort();
    }
    this.xs = xs;
    this.from = from;
    this.to = to;
    return this.buffer.subarray(0, n);
  }

  /** Moves the window from [this.from, this.to) to [from, to); false (and the buffer in no order) when it must be sorted afresh. */
  private slide(xs: ArrayLike<number>, from: number, to: number): boolean {
    if (from - this.from > MOST_MOVED || to - this.to > MOST_MOVED) return false;
    const b = this.buffer;
    let size = this.to - this.from;
    for (let k = this.from; k < from; k++) {
      const v = xs[k];
      if (v === 0 || v !== v) return false;
      const at = boundOf(b, size, v, false);
      if (at >= size || b[at] !== v) return false;
      b.copyWithin(at, at + 1, size);
      size--;
    }
    for (let k = this.to; k < to; k++) {
      const v = xs[k];
      if (v === 0 || v !== v) return false;
      const at = boundOf(b, size, v, true);
      b.copyWithin(at + 1, at, size);
      b[at] = v;
      size++;
    }
    return true;
  }
}
