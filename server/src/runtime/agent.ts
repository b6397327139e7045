/**
 * Host side of QEMU's guest agent protocol (qemu-ga, the `org.qemu.guest_agent.0`
 * virtio-serial port): the agent every Debian, Fedora or Ubuntu image ships,
 * and the one memfabric's own guest runs (guest-init/init starts Debian's
 * qemu-ga). QEMU listens on a unix socket (`-chardev socket,…,server=on`)
 * connected to that port.
 *
 * One connection per call. The agent keeps no session, and whatever an earlier
 * client left unread may still come out first, so every call begins with
 * `guest-sync-delimited` (preceded by 0xFF, which makes the agent drop a
 * half-read request; its answer is preceded by 0xFF, which marks where the
 * fresh answers start). The sync is re-sent until answered: the guest drops
 * what arrives before the agent has opened its port. Then:
 *   guest-exec {path, arg, capture-output: true} → {pid}
 *   guest-exec-status {pid} (polled) → {exited, exitcode | signal, out-data, err-data (base64)}
 */
import * as crypto from 'crypto';
import * as net from 'net';

export interface GuestExecResult {
  /** stdout of the command, decoded as UTF-8. */
  stdout: string;
  /** stderr of the command, decoded as UTF-8. */
  stderr: string;
  /** Exit status (0-255; 127 = command not found; 128+n = killed by signal n). */
  exitCode: number;
}

export class GuestExecTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestExecTimeoutError';
  }
}

/** An error the agent answered with ({"error": {"class", "desc"}}). */
export class GuestAgentError extends Error {
  constructor(
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`the guest agent answered: ${errorClass}: ${desc}`);
    this.name = 'GuestAgentError';
  }
}

export type Json = Record<string, unknown>;

/** One connection to the agent, synchronised; commands one at a time. */
class QgaSession {
  private buf = Buffer.alloc(0);
  private synced = false;
  private readonly syncIds = new Set<number>();
  private waiting: { resolve: (v: unknown) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (b: Buffer) => {
      this.buf = Buffer.concat([this.buf, b]);
      this.drain();
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      this.waiting?.reject(this.failure);
      this.waiting = undefined;
    };
    sock.on('error', (e) => fail(e));
    sock.on('close', () => fail(new Error('the agent socket closed')));
  }

  static open(path: string): Promise<QgaSession> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(path);
      sock.once('connect', () => resolve(new QgaSession(sock)));
      sock.once('error', reject);
    });
  }

  close() {
    this.sock.destroy();
  }

  private drain() {
    if (!this.synced) {
      // Everything before the agent's 0xFF is from before us.
      const ff = this.buf.indexOf(0xff);
      if (ff < 0) {
        this.buf = Buffer.alloc(0);
        return;
      }
      this.buf = this.buf.subarray(ff + 1);
    }
    for (;;) {
      // Answers are JSON objects, one per line; stray 0xFF bytes (of re-sent syncs) are skipped.
      while (this.buf.length && (this.buf[0] === 0xff || this.buf[0] === 0x0a || this.buf[0] === 0x0d || this.buf[0] === 0x20)) this.buf = this.buf.subarray(1);
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) return;
      const line = this.buf.subarray(0, nl).toString('utf8');
      this.buf = this.buf.subarray(nl + 1);
      let msg: Json;
      try {
        msg = JSON.parse(line) as Json;
      } catch {
        continue;
      }
      if (!this.synced) {
        if (typeof msg.return === 'number' && this.syncIds.has(msg.return)) {
          this.synced = true;
          this.waiting?.resolve(msg.return);
          this.waiting = undefined;
        }
        continue;
      }
      // A late answer to a re-sent sync, and the agent's complaint about each 0xFF it met between requests
      // ({"error": {"desc": "JSON parse error, stray '\uFFFD'"}}, seen with qemu-ga 7.2): not answers to us.
      if (typeof msg.return === 'number' && this.syncIds.has(msg.return)) continue;
      if (msg.error && /JSON parse error, stray/.test(String((msg.error as { desc?: string }).desc))) continue;
      const w = this.waiting;
      this.waiting = undefined;
      if (!w) continue;
      if (msg.error && typeof msg.error === 'object') {
        const e = msg.error as { class?: string; desc?: string };
        w.reject(new GuestAgentError(e.class ?? 'GenericError', e.desc ?? JSON.stringify(msg.error)));
      } else w.resolve(msg.return);
    }
  }

  private await(): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  /** guest-sync-delimited, re-sent every `everyMs` until the agent answers. */
  async sync(everyMs = 500): Promise<void> {
    const answered = this.await();
    const send = () => {
      const id = crypto.randomInt(1, 2 ** 31);
      this.syncIds.add(id);
      this.sock.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`${JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } })}\n`)]));
    };
    send();
    const iv = setInterval(send, everyMs);
    try {
      await answered;
    } finally {
      clearInterval(iv);
    }
  }

  command(execute: string, args?: Json): Promise<unknown> {
    const answered = this.await();
    this.sock.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    return answered;
  }
}

/** Runs fn on a synchronised session, within timeoutMs overall. */
async function withSession<T>(agentSocket: string, timeoutMs: number, what: string, fn: (s: QgaSession, signal: { expired: boolean }) => Promise<T>): Promise<T> {
  let session: QgaSession | undefined;
  let timer: NodeJS.Timeout | undefined;
  const state = { expired: false };
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      state.expired = true;
      reject(new GuestExecTimeoutError(`${what}: no answer from the guest agent on ${agentSocket} within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([
      (async () => {
        session = await QgaSession.open(agentSocket).catch((e: Error) => {
          throw new Error(`${what}: agent socket ${agentSocket}: ${e.message}`);
        });
        await session.sync();
        return fn(session, state);
      })(),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
    session?.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Something that carries one guest agent command and returns its "return" value (or throws GuestAgentError). */
export type AgentCommand = (execute: string, args?: Json) => Promise<unknown>;

/** guest-exec, then guest-exec-status until the program has exited (or expired() says the caller gave up). */
export async function execWith(command: AgentCommand, argv: string[], expired: () => boolean): Promise<GuestExecResult> {
  let pid: number;
  try {
    pid = ((await command('guest-exec', { path: argv[0], arg: argv.slice(1), 'capture-output': true })) as { pid: number }).pid;
  } catch (e) {
    // The agent could not start it (not found, not executable): as a shell says, with status 127.
    if (e instanceof GuestAgentError) return { stdout: '', stderr: `${argv[0]}: ${e.desc}\n`, exitCode: 127 };
    throw e;
  }
  for (let wait = 20; !expired(); wait = Math.min(wait * 2, 200)) {
    const st = (await command('guest-exec-status', { pid })) as { exited: boolean; exitcode?: number; signal?: number; 'out-data'?: string; 'err-data'?: string };
    if (st.exited) {
      const text = (b64?: string) => (b64 ? Buffer.from(b64, 'base64').toString('utf8') : '');
      return { stdout: text(st['out-data']), stderr: text(st['err-data']), exitCode: st.exitcode ?? (st.signal !== undefined ? 128 + st.signal : -1) };
    }
    await sleep(wait);
  }
  throw new GuestExecTimeoutError('expired');
}

/** Run `argv` in the guest (guest-exec, PATH searched by the agent) and return its output and exit status. */
export function guestExec(agentSocket: string, argv: string[], timeoutMs: number): Promise<GuestExecResult> {
  if (argv.length === 0) return Promise.reject(new Error('guestExec: empty argv'));
  return withSession(agentSocket, timeoutMs, `guestExec ${JSON.stringify(argv)}`, (s, state) => execWith((e, a) => s.command(e, a), argv, () => state.expired));
}

/** True when the agent answers guest-ping within `timeoutMs`. */
export async function guestPing(agentSocket: string, timeoutMs: number): Promise<boolean> {
  try {
    await withSession(agentSocket, timeoutMs, 'guestPing', (s) => s.command('guest-ping'));
    return true;
  } catch {
    return false;
  }
}
