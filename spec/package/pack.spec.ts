/**
 * What `npm pack` would publish: the licence, the README, the compiled
 * library with its declarations, source maps whose sources are in the
 * package too, every export and the bin; no specs, benchmarks or scripts.
 * And the declarations serve a CommonJS TypeScript project
 * (moduleResolution node16), which reaches this ESM package through
 * `await import()` and `import type ... with { 'resolution-mode': 'import' }`.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '../cli/cli-process.js';

const execFileAsync = promisify(execFile);

interface PackageJson {
  bin: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
}

async function packedFiles(): Promise<Set<string>> {
  const { stdout } = await execFileAsync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
  const [packed] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
  return new Set(packed!.files.map((file) => file.path));
}

test('npm pack: licence, README, library, declarations, resolvable source maps; nothing else', async () => {
  const files = await packedFiles();
  for (const wanted of ['LICENSE', 'README.md', 'package.json', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'lib/index.ts']) assert.ok(files.has(wanted), wanted);
  assert.match(readFileSync(join(REPO_ROOT, 'LICENSE'), 'utf8'), /^MIT License\n/);
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as PackageJson;
  for (const target of Object.values(manifest.bin)) assert.ok(files.has(normalize(target)), `bin ${target}`);
  for (const entry of Object.values(manifest.exports)) {
    for (const target of typeof entry === 'string' ? [entry] : Object.values(entry)) assert.ok(files.has(normalize(target)), `export ${target}`);
  }
  const stray = [...files].filter((path) => !/^(dist\/lib\/|lib\/)/.test(path) && !['LICENSE', 'README.md', 'package.json'].includes(path));
  assert.equal(stray, []);
  let maps = 0;
  for (const path of files) {
    if (path.endsWith('.js')) assert.ok(files.has(path.replace(/\.js$/, '.d.ts')), `declarations of ${path}`);
    if (!path.endsWith('.js.map')) continue;
    maps++;
    const map = JSON.parse(readFileSync(join(REPO_ROOT, path), 'utf8')) as { sources: string[] };
    for (const source of map.sources) assert.ok(files.has(normalize(join(dirname(path), source))), `${path}: source ${source} is packed`);
  }
  assert.ok(maps > 0);
});

test('the declarations type-check in a CommonJS project with moduleResolution node16', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmpx-cjs-'));
  try {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(REPO_ROOT, join(dir, 'node_modules', 'qmpx'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'cjs-user', private: true, type: 'commonjs' }));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'node16', moduleResolution: 'node16', target: 'es2022', noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(REPO_ROOT, 'node_modules', '@types')] },
        files: ['index.ts'],
      }),
    );
    writeFileSync(
      join(dir, 'index.ts'),
      `import type { Monitor } from 'qmpx' with { 'resolution-mode': 'import' };

export async function status(path: string): Promise<unknown> {
  const { connect, QmpError } = await import('qmpx');
  const { MonitorEventFlags } = await import('qmpx/passthrough');
  const monitor: Monitor = await connect(path, { protocol: 'qmp' });
  const flags: number = MonitorEventFlags.REGEX;
  try {
    return await monitor.execute('query-status');
  } catch (error) {
    if (error instanceof QmpError) return error.errorClass + flags;
    throw error;
  } finally {
    await monitor.close();
  }
}
`,
    );
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await execFileAsync(process.execPath, [tsc, '-p', dir]).then(
      () => '',
      (error: { stdout: string }) => error.stdout,
    );
    assert.is(result, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
