/**
 * One QMP conversation over a unix socket: the greeting, qmp_capabilities,
 * then each command in turn after the previous one's answer.
 */
import * as net from 'node:net';

/** A command by name, or with its arguments. */
export type QmpCommand = string | { execute: string; arguments?: Record<string, unknown> };

/** What one command got back: its return value, or QEMU's error. */
export type QmpAnswer = { return: unknown } | { error: { class: string; desc: string } };

export interface QmpExchangeOptions {
  /** Go on with the next command after an error answer (default false: stop there). */
  continueOnError?: boolean;
}

export interface QmpExchangeResult {
  /** How many commands returned, qmp_capabilities included. */
  returned: number;
  /** The answer to each command, in order (qmp_capabilities not included). */
  answers: QmpAnswer[];
  /** The socket closed (QEMU went away, e.g. after quit). */
  closed: boolean;
  /** timeoutMs passed before the last answer. */
  timedOut: boolean;
}

/**
 * Wait for the greeting, send qmp_capabilities, then each command in turn
 * after the previous one's answer. Resolves once the last command answered,
 * or when the socket closes, an error comes back (unless continueOnError) or
 * timeoutMs passes. Never rejects.
 */
export function qmpExchange(socket: string, commands: QmpCommand[], timeoutMs: number, opts: QmpExchangeOptions = {}): Promise<QmpExchangeResult> {
  return new Promise((resolve) => {
    let buf = '';
    let greeted = false;
    let returned = 0;
    let capabilities = false;
    const answers: QmpAnswer[] = [];
    let done = false;
    const sock = net.createConnection(socket);
    const finish = (closed: boolean, timedOut = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ returned, answers, closed, timedOut });
    };
    const timer = setTimeout(() => finish(false, true), timeoutMs);
    const send = (cmd: QmpCommand) => sock.write(JSON.stringify(typeof cmd === 'string' ? { execute: cmd } : cmd) + '\n');
    const next = () => {
      if (answers.length >= commands.length) finish(false);
      else send(commands[answers.length]);
    };
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(true));
    sock.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if (!greeted && 'QMP' in msg) {
          greeted = true;
          send('qmp_capabilities');
        } else if ('return' in msg) {
          returned++;
          if (!capabilities) capabilities = true;
          else answers.push({ return: msg.return });
          next();
        } else if ('error' in msg) {
          if (!capabilities || !opts.continueOnError) {
            finish(false);
            return;
          }
          const e = msg.error as { class?: string; desc?: string };
          answers.push({ error: { class: String(e?.class ?? ''), desc: String(e?.desc ?? '') } });
          next();
        }
      }
    });
  });
}

/** True when QEMU greets on its QMP socket and accepts qmp_capabilities. */
export async function qmpAnswers(socket: string, timeoutMs = 2000): Promise<boolean> {
  return (await qmpExchange(socket, [], timeoutMs)).returned >= 1;
}

/** capabilities, then quit; QEMU closes the socket as it exits. Resolves whatever happens (best effort). */
export async function qmpQuit(socket: string, timeoutMs = 3000): Promise<boolean> {
  const r = await qmpExchange(socket, ['quit'], timeoutMs);
  return r.returned >= 2 || (r.returned >= 1 && r.closed);
}
