/**
 * memfabric console: the node's serial console (console.sock) in the terminal.
 * On a TTY: raw mode, Ctrl-] leaves (the node keeps running). Otherwise stdin
 * is piped to the console until EOF, and the console's output to stdout until
 * the guest has been quiet for a moment.
 */
import * as net from 'node:net';

export interface ConsoleStreams {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const CTRL_RBRACKET = 0x1d;

export function attachConsole(
  socketPath: string,
  node: string,
  io: ConsoleStreams = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
  opts: { quietMs?: number; maxDrainMs?: number } = {},
): Promise<number> {
  return new Promise((resolve) => {
    const sock = net.connect(socketPath);
    const tty = !!io.stdin.isTTY && typeof io.stdin.setRawMode === 'function';
    let done = false;
    let lastData = Date.now();
    const finish = (code: number, msg?: string) => {
      if (done) return;
      done = true;
      if (tty) {
        try { io.stdin.setRawMode(false); } catch { /* closed */ }
      }
      io.stdin.pause();
      io.stdin.removeListener('data', onStdin);
      io.stdin.removeListener('end', onEnd);
      if (msg) io.stderr.write(msg);
      sock.destroy();
      resolve(code);
    };
    const onStdin = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (tty) {
        const i = b.indexOf(CTRL_RBRACKET);
        if (i >= 0) {
          if (i > 0) sock.write(b.subarray(0, i));
          finish(0, `\r\nmemfabric: left the console of ${node} (the node keeps running)\r\n`);
          return;
        }
      }
      sock.write(b);
    };
    const onEnd = () => {
      // stdin closed: let the guest answer what was sent, then leave.
      const quietMs = opts.quietMs ?? 700;
      const maxMs = opts.maxDrainMs ?? 5000;
      const t0 = Date.now();
      lastData = Date.now();
      const tick = () => {
        if (done) return;
        if (Date.now() - lastData >= quietMs || Date.now() - t0 >= maxMs) finish(0);
        else setTimeout(tick, 100);
      };
      setTimeout(tick, 100);
    };
    sock.on('connect', () => {
      if (tty) {
        io.stderr.write(`memfabric: connected to the console of ${node}; Ctrl-] leaves\r\n`);
        io.stdin.setRawMode(true);
      }
      io.stdin.on('data', onStdin);
      io.stdin.on('end', onEnd);
      io.stdin.resume();
    });
    sock.on('data', (d) => {
      lastData = Date.now();
      io.stdout.write(d);
    });
    sock.on('error', (e) => finish(1, `memfabric console: ${node}: ${e.message}\n`));
    sock.on('close', () => finish(done ? 0 : 1, done ? undefined : `\r\nmemfabric console: the console of ${node} closed (QEMU stopped?)\r\n`));
  });
}
