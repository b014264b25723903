#!/usr/bin/env node
/**
 * The unit tier's build step (`npm run test:unit`): turns lib/, spec/ and
 * bench/ (some of whose parts have specs) into JavaScript under dist-unit/
 * with esbuild, file by file, without type-checking. Type errors are the type check's to find
 * (`npm run typecheck`, run by CI); the unit tier only needs code it can
 * run, and tsc takes over ten seconds to build what esbuild writes in under
 * one.
 *
 * dist-unit/ has dist/'s layout (dist-unit/lib/..., dist-unit/spec/...), so
 * a path a module finds from its own location (`../../../package.json`)
 * resolves the same in both. Each run starts from an empty dist-unit/: a
 * spec whose source was removed leaves nothing behind to be run.
 *
 * esbuild reads tsconfig.json for what changes the emitted code (the
 * target, hence define semantics for class fields), as tsc does.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const UNIT_OUT_DIR = join(ROOT, 'dist-unit');
const SOURCE_DIRS = ['lib', 'spec', 'bench'];

/** TypeScript sources under `dir`, relative to the project root; declaration files are not code. */
function sourcesUnder(dir) {
  return readdirSync(join(ROOT, dir), { recursive: true })
    .filter((entry) => entry.endsWith('.ts') && !entry.endsWith('.d.ts'))
    .map((entry) => relative(ROOT, join(ROOT, dir, entry)));
}

const started = Date.now();
rmSync(UNIT_OUT_DIR, { recursive: true, force: true });
const entryPoints = SOURCE_DIRS.flatMap(sourcesUnder);
const result = await build({
  absWorkingDir: ROOT,
  entryPoints,
  outdir: UNIT_OUT_DIR,
  outbase: ROOT,
  bundle: false,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
}).catch(() => undefined); // esbuild has printed what failed
if (result === undefined) process.exit(1);
console.log(`transpiled ${entryPoints.length} files to ${relative(ROOT, UNIT_OUT_DIR)}/ in ${Date.now() - started} ms (not type-checked: npm run typecheck)`);
