/** The language server over stdio (bin/memfabric.js lsp --stdio) with its publishes kept, for tests of what it publishes later (the background probe). */
import { spawn } from 'node:child_process';
import { createMessageConnection, MessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { QemuRequest } from '../../server/src/lsp/protocol';
import { BIN, REPO } from './cli';

export interface Pub { uri: string; version?: number; diagnostics: { code?: string | number; message: string; severity?: number }[] }

export async function server(init: object, dir: string): Promise<{ conn: MessageConnection; pid: number; pubs: Pub[]; waitFor(pred: (p: Pub) => boolean, ms?: number): Promise<Pub>; close(): void }> {
  const child = spawn(process.execPath, [BIN, 'lsp', '--stdio'], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, XDG_CACHE_HOME: dir } });
  const conn = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  const pubs: Pub[] = [];
  const waiters: { pred: (p: Pub) => boolean; res: (p: Pub) => void }[] = [];
  conn.onNotification('textDocument/publishDiagnostics', (p: Pub) => {
    pubs.push(p);
    for (const w of [...waiters]) if (w.pred(p)) (waiters.splice(waiters.indexOf(w), 1), w.res(p));
  });
  conn.listen();
  await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions: init });
  conn.sendNotification('initialized', {});
  await conn.sendRequest(QemuRequest.type);
  return {
    conn,
    pid: child.pid!,
    pubs,
    waitFor: (pred, ms = 15000) => {
      const hit = pubs.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`no such publish in ${ms} ms: ${JSON.stringify(pubs.at(-1))}`)), ms);
        waiters.push({ pred, res: (p) => (clearTimeout(t), res(p)) });
      });
    },
    close: () => {
      conn.dispose();
      child.kill();
    },
  };
}

