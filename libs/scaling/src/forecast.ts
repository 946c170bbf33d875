export interface Point {
  at: number;
  value: number;
}

/**
 * Least-squares line through the points, evaluated at `at`. With fewer than two distinct times the
 * forecast is the last value: no trend can be read from one sample.
 */
export function linearForecast(points: readonly Point[], at: number): number {
  const n = points.length;
  if (n === 0) return 0;
  const last = points[n - 1];
  if (n === 1) return last.value;
  let sx = 0;
  let sy = 0;
  for (const p of points) {
    sx += p.at;
    sy += p.value;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.at - mx) ** 2;
    sxy += (p.at - mx) * (p.value - my);
  }
  if (sxx === 0) return last.value;
  return my + (sxy / sxx) * (at - mx);
}
