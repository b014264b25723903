/**
 * `npm run bench -- --against DIR`: this build against another built
 * checkout, figure by figure, with the spread of each build's own runs
 * beside the change, so a change is read against how much the figure moves
 * with nothing changed.
 *
 * What is compared is each figure's ratio to its reference measured in the
 * same run (qmpx ÷ the raw client, ÷ `node -e 0`, ...): the reference
 * carries the machine's load of that minute, the ratio much less of it.
 * Where a figure has no reference (raw 0), its own value is compared.
 * Higher is better for rates (a unit ending in `/s`), lower for the rest.
 * Two runs of a build can land close together by chance, so the spread
 * a change is held against is at least MIN_SPREAD: figures on a shared
 * two-core machine move that much between runs with nothing changed.
 */
import { median, type BenchResult } from './measure.js';

/** One suite's runs, one result list per run, for this build and the other. */
export interface SuiteRuns {
  suite: string;
  ours: BenchResult[][];
  theirs: BenchResult[][];
}

export interface FigureComparison {
  name: string;
  unit: string;
  /** The compared value of each of our runs, then of theirs. */
  ours: number[];
  theirs: number[];
  /** Median of ours ÷ median of theirs, minus 1, signed so that positive is better. */
  gain: number;
  /** The larger of the two builds' spreads ((max − min) ÷ median of a build's runs), at least MIN_SPREAD. */
  spread: number;
  verdict: 'better' | 'worse' | 'within spread' | 'only one run';
}

/** The smallest spread a change is held against (see above). */
export const MIN_SPREAD = 0.03;

const comparedValue = (result: BenchResult): number => (result.raw > 0 && Number.isFinite(result.ratio) ? result.ratio : result.qmpx);
const higherIsBetter = (unit: string): boolean => unit.endsWith('/s');

function spreadOf(values: number[]): number {
  if (values.length < 2) return 0;
  const middle = median(values);
  return middle === 0 ? 0 : (Math.max(...values) - Math.min(...values)) / Math.abs(middle);
}

/** The figures both builds report (matched by name), in our order. */
export function compareSuite(runs: SuiteRuns): FigureComparison[] {
  const comparisons: FigureComparison[] = [];
  for (const { name, unit } of runs.ours[0] ?? []) {
    const pick = (lists: BenchResult[][]): number[] =>
      lists.flatMap((list) => list.filter((result) => result.name === name).map(comparedValue));
    const ours = pick(runs.ours);
    const theirs = pick(runs.theirs);
    if (ours.length === 0 || theirs.length === 0) continue;
    const change = median(ours) / median(theirs) - 1;
    const gain = higherIsBetter(unit) ? change : -change;
    const spread = Math.max(spreadOf(ours), spreadOf(theirs), MIN_SPREAD);
    const verdict = ours.length < 2 || theirs.length < 2 ? 'only one run' : Math.abs(gain) <= spread ? 'within spread' : gain > 0 ? 'better' : 'worse';
    comparisons.push({ name, unit, ours, theirs, gain, spread, verdict });
  }
  return comparisons;
}

const percent = (fraction: number): string => `${fraction >= 0 ? '+' : ''}${(fraction * 100).toFixed(1)}%`;
const values = (list: number[]): string => list.map((value) => (Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(4))).join(' · ');

export function printComparison(suite: string, against: string, comparisons: FigureComparison[]): void {
  console.log(`\n${suite}: this build against ${against} (ratio to the reference of each run, or the value where there is none)`);
  if (comparisons.length === 0) console.log('  no figure of the same name in both builds');
  for (const figure of comparisons) {
    console.log(
      `  ${figure.name.padEnd(64)} ${values(figure.ours).padStart(17)} vs ${values(figure.theirs).padEnd(17)} gain ${percent(figure.gain).padStart(7)}, spread ${(figure.spread * 100).toFixed(1)}%: ${figure.verdict}`,
    );
  }
}
