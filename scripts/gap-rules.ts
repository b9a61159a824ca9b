// Shared by the offline gap experiments (scripts/gap-*.ts): per-class standardization of a score on the
// calibration rows, and the table that judges scoring rules on held-out clean and attacked images.
import { thresholdFor } from '../src/detect/index.js';
import { auc, rateAbove, tprAtFpr } from '../src/eval/index.js';

const Z95 = 1.6448536269514722;

/**
 * Per class, the median and upper-tail spread ((95th percentile - median) / z_0.95) of `value` over the
 * calibration rows of that class: how the confidence term standardizes its statistics. Returns z(row, value).
 */
export function upperTailStandardizer<R extends { label: number }>(
  calibration: readonly R[],
  classes: number,
  value: (row: R) => number,
): (row: R, x: number) => number {
  const scale = Array.from({ length: classes }, (_, c) => {
    const s = Float64Array.from(calibration.filter((x) => x.label === c).map(value)).sort();
    const q = (p: number) => s[Math.min(s.length - 1, Math.round(p * (s.length - 1)))]!;
    return [q(0.5), Math.max((q(0.95) - q(0.5)) / Z95, 1e-9)] as const;
  });
  return (row, x) => (x - scale[row.label]![0]) / scale[row.label]![1];
}

/**
 * Prints a markdown row per rule: per-class thresholds for 5% FPR on the calibration rows, the measured FPR of
 * the held-out clean rows at them, and per attack the AUC (TPR at 5% FPR) of clean against attacked.
 */
export function printRuleTable<R extends { label: number }>(
  rules: ReadonlyArray<readonly [string, (row: R) => number]>,
  classes: number,
  sets: { calibration: readonly R[]; clean: readonly R[]; attacked: ReadonlyMap<string, readonly R[]> },
  attacks: readonly string[],
): void {
  console.log(`| rule | FPR | ${attacks.join(' | ')} |`);
  console.log(`|---|---|${attacks.map(() => '---|').join('')}`);
  for (const [rule, f] of rules) {
    const thresholds = Array.from({ length: classes }, (_, c) =>
      thresholdFor(sets.calibration.filter((x) => x.label === c).map(f), 0.05),
    );
    const above = (set: readonly R[]) => set.map((x) => f(x) - thresholds[x.label]!);
    const negatives = above(sets.clean);
    const cells = attacks.map((a) => {
      const positives = above(sets.attacked.get(a)!);
      return `${auc(negatives, positives).toFixed(4)} (${tprAtFpr(negatives, positives, 0.05).toFixed(3)})`;
    });
    console.log(`| ${rule} | ${rateAbove(negatives, 0).toFixed(3)} | ${cells.join(' | ')} |`);
  }
}
