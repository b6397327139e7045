/**
 * The language server judges an aarch64 domain with the installed
 * qemu-system-aarch64, read from the binary (as the CLI's archProfile), not
 * with the bundled aarch64 profile: over a real LSP client on stdio.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { QemuRequest } from '../server/src/lsp/protocol';
import { BIN, REPO } from './support/cli';

interface Pub { uri: string; diagnostics: { code?: string | number; message: string }[] }

const which = spawnSync('sh', ['-c', 'command -v qemu-system-aarch64'], { encoding: 'utf8' }).stdout.trim();
const versionLine = which ? spawnSync(which, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] : '';
const version = /version (\d+\.\d+\.\d+)/.exec(versionLine)?.[1];

test('LSP: an aarch64 domain (egm-rfc.xml) is judged with the installed qemu-system-aarch64, read from the binary', { skip: !version && 'no qemu-system-aarch64' }, async () => {
  // A cache of its own: the profile is read from the binary, not found in a cache from before.
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-lsp-arch-'));
  const child = spawn(process.execPath, [BIN, 'lsp', '--stdio'], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, XDG_CACHE_HOME: dir } });
  const conn = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  const pubs: Pub[] = [];
  const logs: string[] = [];
  conn.onNotification('textDocument/publishDiagnostics', (p: Pub) => pubs.push(p));
  conn.onNotification('window/logMessage', (m: { message: string }) => logs.push(m.message));
  conn.listen();
  try {
    await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions: {} });
    conn.sendNotification('initialized', {});
    const before = await conn.sendRequest(QemuRequest.type);
    assert.equal(before.arches, undefined, 'no other architecture before an aarch64 document');
    const file = join(REPO, 'test', 'fixtures', 'libvirt', 'egm-rfc.xml');
    const uri = pathToFileURL(file).toString();
    conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'xml', version: 1, text: readFileSync(file, 'utf8') } });
    const deadline = Date.now() + 15000;
    while (!pubs.some((p) => p.uri === uri) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(pubs.some((p) => p.uri === uri), 'diagnostics for egm-rfc.xml');
    const info = await conn.sendRequest(QemuRequest.type);
    const a = info.arches?.aarch64;
    assert.ok(a, JSON.stringify(info));
    assert.equal(realpathSync(a.origin), realpathSync(which), `origin: ${a.origin}`);
    assert.equal(a.version, version, `${a.version} vs "${versionLine}"`);
    assert.equal(a.note, undefined);
    assert.match(a.label, new RegExp(`QEMU ${version!.replace(/\./g, '\\.')}`));
    assert.ok(!/bundled/.test(a.label), a.label);
    // The x86 profile is the user's as before; the aarch64 domain is judged again with the binary's profile.
    assert.notEqual(info.origin, a.origin);
    assert.ok(logs.some((l) => /judging aarch64 nodes for QEMU/.test(l)), logs.join('\n'));
    const t = Date.now() + 10000;
    while (pubs.filter((p) => p.uri === uri).length < 2 && Date.now() < t) await new Promise((r) => setTimeout(r, 50));
    const last = pubs.filter((p) => p.uri === uri).at(-1)!;
    assert.deepEqual(last.diagnostics.map((d) => String(d.code)), ['egm-unsupported']);
  } finally {
    conn.dispose();
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
