/**
 * Host side of the memfabric guest command agent (guest side:
 * server/src/runtime/guest-init/memfabric-agent).
 *
 * QEMU listens on a unix socket (`-chardev socket,path=...,server=on,wait=off`)
 * connected to the virtio-serial port `org.memfabric.agent`.  One connection
 * per command:
 *   host  -> `MFRUN <id> <b64(arg0)> <b64(arg1)> ...\n`   (empty arg: `.`)
 *   guest -> `MFACK <id>`, `MFOUT <id>`, base64 lines, `MFERR <id>`, base64 lines,
 *            `MFEXIT <id> <status>`
 * Frames with another id (left over from an earlier, timed-out command) are ignored.
 * The request is re-sent every second until `MFACK` arrives, because the guest
 * drops data that arrives before the agent has opened its port.
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

function encodeArg(a: string): string {
  return a === '' ? '.' : Buffer.from(a, 'utf8').toString('base64');
}

/** Run `argv` in the guest and return its output and exit status. */
export function guestExec(agentSocket: string, argv: string[], timeoutMs: number): Promise<GuestExecResult> {
  if (argv.length === 0) return Promise.reject(new Error('guestExec: empty argv'));
  const id = crypto.randomBytes(6).toString('hex');
  const request = `MFRUN ${id} ${argv.map(encodeArg).join(' ')}\n`;

  return new Promise<GuestExecResult>((resolve, reject) => {
    let settled = false;
    let acked = false;
    let state: 'wait' | 'out' | 'err' = 'wait';
    const out: string[] = [];
    const err: string[] = [];
    let pending = '';
    let resend: NodeJS.Timeout | undefined;

    const sock = net.createConnection(agentSocket);
    const finish = (e: Error | undefined, r?: GuestExecResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (resend) clearInterval(resend);
      sock.destroy();
      if (e) reject(e);
      else resolve(r!);
    };
    const timer = setTimeout(() => finish(new GuestExecTimeoutError(
      `guestExec: no ${acked ? 'MFEXIT' : 'answer (MFACK)'} from the guest agent on ${agentSocket} within ${timeoutMs} ms for ${JSON.stringify(argv)}`,
    )), timeoutMs);

    sock.on('connect', () => {
      sock.write(request);
      resend = setInterval(() => { if (!acked) sock.write(request); }, 1000);
    });
    sock.on('error', (e) => finish(new Error(`guestExec: agent socket ${agentSocket}: ${e.message}`)));
    sock.on('close', () => finish(new Error(`guestExec: agent socket ${agentSocket} closed before the command finished`)));
    sock.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).replace(/\r$/, '');
        pending = pending.slice(nl + 1);
        const m = /^(MF[A-Z]+) (\S+)(?: (\S+))?$/.exec(line);
        if (m) {
          if (m[2] !== id) { state = 'wait'; continue; } // stale frame of another command
          switch (m[1]) {
            case 'MFACK': acked = true; break;
            case 'MFOUT': state = 'out'; break;
            case 'MFERR': state = 'err'; break;
            case 'MFEXIT': {
              const code = Number(m[3]);
              finish(undefined, {
                stdout: Buffer.from(out.join(''), 'base64').toString('utf8'),
                stderr: Buffer.from(err.join(''), 'base64').toString('utf8'),
                exitCode: Number.isInteger(code) ? code : -1,
              });
              return;
            }
            case 'MFBAD': finish(new Error(`guestExec: the guest agent rejected the request (${line})`)); return;
            default: break;
          }
          continue;
        }
        if (state === 'out') out.push(line.trim());
        else if (state === 'err') err.push(line.trim());
      }
    });
  });
}

/** True when the agent answers a ping within `timeoutMs`. */
export function guestPing(agentSocket: string, timeoutMs: number): Promise<boolean> {
  const id = crypto.randomBytes(6).toString('hex');
  return new Promise<boolean>((resolve) => {
    let done = false;
    let buf = '';
    const sock = net.createConnection(agentSocket);
    let iv: NodeJS.Timeout | undefined;
    const finish = (v: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (iv) clearInterval(iv);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('connect', () => {
      sock.write(`MFPING ${id}\n`);
      iv = setInterval(() => sock.write(`MFPING ${id}\n`), 500);
    });
    sock.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      if (buf.includes(`MFPONG ${id}\n`)) finish(true);
    });
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(false));
  });
}
