/**
 * Drives one downstream session of the proxy (QMP or HMP) over a real UNIX
 * socket: a listener in a private temp dir makes the session on each
 * connection and greets it on the given upstream link; the client writes
 * its input, ends its side, and reads until the session closes the
 * connection.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { silentLogger } from '../../lib/log.js';
import { noAudit } from '../../lib/proxy/audit.js';
import { HmpSession } from '../../lib/proxy/hmp-session.js';
import type { Policy } from '../../lib/proxy/policy.js';
import { QmpSession } from '../../lib/proxy/qmp-session.js';
import type { DownstreamSession, SessionContext } from '../../lib/proxy/session.js';
import type { UpstreamLink } from '../../lib/proxy/upstream.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { withDeadline } from './support.js';

export type SessionKind = 'qmp' | 'hmp';

/** What one case is run with. */
export interface SessionCase {
  kind: SessionKind;
  link: UpstreamLink;
  policy: Policy;
  maxPendingCommands: number;
  input: Buffer;
  /** Cut points for the client's writes. */
  writes: Uint8Array[];
}

export interface SessionRun {
  session: DownstreamSession;
  output: Buffer;
}

export const SESSION_DEADLINE_MS = 10_000;

/**
 * Resolves once the sessions run so far are released: their connections
 * have closed (each case waits for that), and an ended session's linger
 * timer is cleared on close, so one turn of the event loop lets their
 * close handlers finish.
 */
export function sessionsReleased(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class SessionHarness {
  private readonly dir = createTempDir('qmpx-fuzz-session');
  private readonly path = socketPathIn(this.dir, 'session.sock');
  private readonly server: Server;
  private nextCase: ((socket: Socket) => void) | undefined;
  /** Sessions' sockets still open: a hung case must not keep close() waiting. */
  private readonly openSockets = new Set<Socket>();

  private constructor() {
    // As the proxy listens: a client that ends its side still gets its answers.
    this.server = createServer({ allowHalfOpen: true }, (socket) => {
      this.openSockets.add(socket);
      socket.once('close', () => this.openSockets.delete(socket));
      const take = this.nextCase;
      this.nextCase = undefined;
      if (take === undefined) socket.destroy();
      else take(socket);
    });
  }

  static async start(): Promise<SessionHarness> {
    const harness = new SessionHarness();
    await new Promise<void>((resolve, reject) => {
      harness.server.once('error', reject);
      harness.server.listen(harness.path, resolve);
    });
    return harness;
  }

  /** Runs one case: resolves once the session has closed the connection and the client has read everything. */
  async run(testCase: SessionCase): Promise<SessionRun> {
    const accepted = new Promise<DownstreamSession>((resolve) => {
      this.nextCase = (socket) => {
        const context: SessionContext = {
          endpoint: this.path,
          policy: testCase.policy,
          logger: silentLogger,
          audit: noAudit,
          monitorName: () => 'fuzz',
          maxBufferedBytes: 1024 * 1024,
          maxPendingCommands: testCase.maxPendingCommands,
        };
        const session = testCase.kind === 'qmp' ? new QmpSession(socket, context) : new HmpSession(socket, context);
        session.greet(testCase.link);
        resolve(session);
      };
    });
    const client = connect(this.path);
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise<void>((resolve, reject) => {
      client.once('close', () => resolve());
      client.once('error', reject);
    });
    await new Promise<void>((resolve) => client.once('connect', resolve));
    for (const write of testCase.writes) if (write.length > 0) client.write(write);
    client.end();
    const session = await withDeadline(accepted, SESSION_DEADLINE_MS, 'the session was made');
    await withDeadline(closed, SESSION_DEADLINE_MS, `the ${testCase.kind} session answered and closed`);
    await withDeadline(session.closed, SESSION_DEADLINE_MS, `the ${testCase.kind} session reported its close`);
    return { session, output: Buffer.concat(received) };
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.openSockets) socket.destroy();
    await closed;
    await removeTempDir(this.dir);
  }
}
