/**
 * Runs an ES module's text in a fresh Node process, for specs that look at
 * what a new process loads or maps; resolves with its stdout, rejects with
 * its stderr when it exits non-zero, and kills it after a deadline.
 */
import { spawn } from 'node:child_process';

const DEADLINE_MS = 15_000;

export function runModuleText(source: string, deadlineMs = DEADLINE_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`child exited with ${code}: ${stderr}`));
    });
  });
}
