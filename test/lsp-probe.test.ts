/**
 * The language server's background probe: when a document rests, the user's
 * QEMU runs on it (only when the client asks: the VS Code client in a trusted
 * workspace), QEMU's refusals join the diagnostics, the memory map says
 * "confirmed by QEMU"; a change cancels a probe, and without the option
 * nothing is run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LayoutRequest, QemuRequest } from '../server/src/lsp/protocol';
import { REPO, hasQemu } from './support/cli';
import { Pub, server } from './support/lsp-server';

const codes = (p: Pub) => p.diagnostics.map((d) => String(d.code));

test('background probe: a refusal only QEMU knows appears when the document rests; without the option nothing runs', { skip: !hasQemu() && 'no qemu-system-x86_64' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-lsp-probe-'));
  const text = `qemu-system-x86_64 -M q35 -m 1G \\\n  -object memory-backend-file,id=fam,mem-path=${dir}/missing/fam.raw,size=1G,share=on \\\n  -device ivshmem-plain,id=shm,memdev=fam,bus=pcie.0\n`;
  const uri = pathToFileURL(join(dir, 'missing.qemu')).toString();
  const on = await server({ probe: true }, dir);
  try {
    on.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'qemu-cmdline', version: 1, text } });
    const first = await on.waitFor((p) => p.uri === uri);
    assert.ok(!codes(first).includes('qemu-refuses'), 'the model alone, at once');
    const probed = await on.waitFor((p) => p.uri === uri && codes(p).includes('qemu-refuses'));
    assert.equal(probed.version, 1);
    assert.match(probed.diagnostics.find((d) => d.code === 'qemu-refuses')!.message, /^QEMU 7\.2\.\d+ refuses to start this node .*can't open backing store/);
  } finally {
    on.close();
  }
  const off = await server({}, dir);
  try {
    off.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'qemu-cmdline', version: 1, text } });
    await off.waitFor((p) => p.uri === uri);
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(off.pubs.every((p) => !codes(p).includes('qemu-refuses')), 'no probe without the client asking');
  } finally {
    off.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('background probe: typing cancels it; what is published is for the last text; memfabric/layout says "confirmed"', { skip: !hasQemu() && 'no qemu-system-x86_64' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-lsp-probe-'));
  const fame = readFileSync(join(REPO, 'examples', 'fame-4node.cluster.xml'), 'utf8').replace('path="fam.raw"', `path="${dir}/fam.raw"`);
  const file = join(dir, 'fame.cluster.xml');
  writeFileSync(file, fame);
  const uri = pathToFileURL(file).toString();
  const s = await server({ probe: true }, dir);
  try {
    s.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'memfabric-topology', version: 1, text: fame } });
    // Keep typing (each change within the rest time): no probe may finish for an old version.
    for (let v = 2; v <= 6; v++) {
      await new Promise((r) => setTimeout(r, 300));
      s.conn.sendNotification('textDocument/didChange', { textDocument: { uri, version: v }, contentChanges: [{ text: fame.replace('memory="1G"', `memory="${v}G"`) }] });
    }
    await s.waitFor((p) => p.uri === uri && p.version === 6);
    // At rest: the probe runs on version 6 and confirms the prediction for 6G.
    let layout;
    for (let i = 0; i < 60; i++) {
      layout = await s.conn.sendRequest(LayoutRequest.type, { uri, node: 'node01' });
      if (layout.nodes[0].probe) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const n = layout!.nodes[0];
    assert.ok(n.probe, 'the probe ran once the document rested');
    assert.equal(n.probe!.confirmed, true, JSON.stringify(n.probe));
    assert.ok(n.e820.some((e) => e.type === 'System RAM' && e.end === '0x1ffffffff'), '6G on q35: 2 GiB below 4 GiB, 4 GiB above');
    assert.ok(s.pubs.filter((p) => p.uri === uri).every((p) => !codes(p).includes('probe-disagrees')));
    assert.equal(spawnSync('pgrep', ['-f', `${dir}`]).status, 1, 'no QEMU of the probe is left');
  } finally {
    s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the language server ended with SIGTERM while its background probe runs QEMU leaves no QEMU behind', { skip: !hasQemu() && 'no qemu-system-x86_64' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-lsp-sigterm-'));
  // A shape no probe has cached (its memory size is new each run), so QEMU really runs.
  const mib = 900 + Math.floor(Math.random() * 1000);
  const text = `qemu-system-x86_64 -M q35 -m ${mib}M -smp 2\n`;
  const uri = pathToFileURL(join(dir, 'n.qemu')).toString();
  const s = await server({ probe: true }, dir);
  try {
    s.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'qemu-cmdline', version: 1, text } });
    // Catch the probe's QEMU (a child of the server) while it runs.
    let qemu: number | undefined;
    for (let i = 0; i < 500 && qemu === undefined; i++) {
      qemu = childQemu(s.pid);
      if (qemu === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(qemu, 'the background probe started QEMU');
    process.kill(s.pid, 'SIGTERM');
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      alive = isAlive(qemu);
      if (alive) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(!alive, `QEMU ${qemu} still runs after the language server was ended`);
  } finally {
    s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The probe's QEMU (not its -version check) whose parent is pid. */
function childQemu(pid: number): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (ppid === pid && cmd.includes('qemu-system') && cmd.includes('memfabric-probe-')) return Number(d);
    } catch { /* gone */ }
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}
