#!/usr/bin/env node
/**
 * The unit tier's build step (`npm run test:unit`): the incremental build,
 * skipped when nothing it reads has changed since it last succeeded. With
 * nothing to recompile tsc still reads and binds every source and
 * declaration file, several seconds on a small machine; this looks only at
 * modification times.
 *
 * The build runs (scripts/clean-dist.mjs, then tsc --incremental) when any
 * file or folder under lib/, spec/ or bench/, tsconfig.json, package.json
 * or package-lock.json is newer than dist/.build-ok, which it writes after
 * a build that succeeded. A folder's time moves when a file in it is added,
 * removed or renamed, so those are seen too. It exits with tsc's status.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STAMP = join(ROOT, 'dist', '.build-ok');
const WATCHED_DIRS = ['lib', 'spec', 'bench'];
const WATCHED_FILES = ['tsconfig.json', 'package.json', 'package-lock.json'];

/** The newest modification time (ms) of `path` and, for a folder, everything in it. */
function newest(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat === undefined) return 0;
  let latest = stat.mtimeMs;
  if (stat.isDirectory()) {
    for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  }
  return latest;
}

function upToDate() {
  if (!existsSync(STAMP)) return false;
  const built = statSync(STAMP).mtimeMs;
  return [...WATCHED_DIRS, ...WATCHED_FILES].every((name) => newest(join(ROOT, name)) < built);
}

if (upToDate()) {
  console.log('build: nothing changed since the last build');
  process.exit(0);
}
const started = Date.now();
for (const [command, args] of [
  [process.execPath, [join(ROOT, 'scripts', 'clean-dist.mjs')]],
  [process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json', '--incremental', '--tsBuildInfoFile', 'dist/.tsbuildinfo']],
]) {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
// Stamped with the time the build started: a source saved while tsc ran is newer, and builds again.
closeSync(openSync(STAMP, 'a'));
utimesSync(STAMP, new Date(started), new Date(started));
