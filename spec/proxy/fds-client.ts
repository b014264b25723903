/**
 * A QMP client we did not write sending fds: Python's own `socket.send_fds`
 * (SCM_RIGHTS), run as `python3 -c`. The script given is Python with
 * `cmd(obj, fds=[])` (sends one command, returns its reply, events
 * skipped), `raw(bytes, fds=[])` (sends bytes as they are) and `reply()`
 * in scope, after the greeting and `qmp_capabilities`; every `out(value)`
 * becomes one element of the result.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';

const PRELUDE = `
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile('rb')
def reply():
    while True:
        line = f.readline()
        if not line:
            raise SystemExit('connection closed')
        value = json.loads(line)
        if 'event' not in value:
            return value
def raw(data, fds=()):
    if fds:
        socket.send_fds(s, [data], list(fds))
    else:
        s.sendall(data)
def cmd(obj, fds=()):
    raw(json.dumps(obj).encode(), fds)
    return reply()
def out(value):
    print(json.dumps(value), flush=True)
reply()
cmd({'execute': 'qmp_capabilities'})
`;

/** Runs `script` as a client of the QMP socket `path`; resolves with what it out()put, rejects if it fails. */
export function pythonClient(path: string, script: string, ...args: string[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', `${PRELUDE}\n${script}`, path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`python client exited with ${code}: ${stderr}`));
      else resolve(stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as unknown));
    });
  });
}

/** How many fds process `pid` has open. */
export function openFdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
