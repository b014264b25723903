/**
 * How many cases a property test tries. The full suite tries `runs`; the
 * unit tier (`npm run test:unit`, where scripts/run-specs.mjs --unit sets
 * QMPX_SPEC_TIER=unit) tries a fifth of them, at least 200, to stay a tier
 * one runs after every edit. Every property keeps its assertions in both;
 * only the number of generated cases differs.
 */
const UNIT_TIER_SHARE = 5;
const UNIT_TIER_MIN_RUNS = 200;

export function propertyRuns(runs: number): number {
  if (process.env.QMPX_SPEC_TIER !== 'unit') return runs;
  return Math.min(runs, Math.max(UNIT_TIER_MIN_RUNS, Math.round(runs / UNIT_TIER_SHARE)));
}
