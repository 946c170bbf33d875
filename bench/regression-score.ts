// TCPDBench's scoring (van den Burg & Williams, 2020): a detection is a true positive when within `margin`
// samples of an annotated change point, each detection used at most once (nearest first). Precision is
// against the union of every annotator's points, recall is averaged over annotators, and the start of the
// series (0) counts as a change point in every set, as in TCPDBench's f_measure. F1 is averaged over series.

/** The annotations matched by detections within the margin. */
function truePositives(annotations: readonly number[], detections: readonly number[], margin: number): number {
  const left = new Set(detections);
  let tp = 0;
  for (const tau of annotations) {
    let best: number | undefined;
    for (const x of left) if (Math.abs(tau - x) <= margin && (best === undefined || Math.abs(tau - x) < Math.abs(tau - best))) best = x;
    if (best !== undefined) {
      tp++;
      left.delete(best);
    }
  }
  return tp;
}

export interface Score {
  precision: number;
  recall: number;
  f1: number;
}

/**
 * Precision, recall and F1 of one series against one or more annotators' change points: TCPDBench's way (0 in
 * every set) or plainly (without it, where a series with no change and no alert scores 1 and either alone 0).
 */
export function fMeasure(annotators: readonly (readonly number[])[], detected: readonly number[], margin = 5, withZero = true): Score {
  const sets = (annotators.length ? annotators : [[]]).map((a) => [...new Set(withZero ? [0, ...a] : a)]);
  const X = [...new Set(withZero ? [0, ...detected] : detected)];
  const union = [...new Set(sets.flat())];
  if (union.length === 0 && X.length === 0) return { precision: 1, recall: 1, f1: 1 };
  const precision = X.length === 0 ? 1 : truePositives(union, X, margin) / X.length;
  const recall = sets.reduce((sum, T) => sum + (T.length === 0 ? 1 : truePositives(T, X, margin) / T.length), 0) / sets.length;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1 };
}
