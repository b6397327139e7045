/**
 * memfabric verify / view / console on two real FAME guests: the guest's
 * memory map equals the prediction, lspci shows the 32G fabric BAR, and a
 * command piped into the console runs in the guest. Also the comparison
 * itself, on a snapshot changed by hand (no guest needed).
 * The run directory is a temp dir (MEMFABRIC_RUN_DIR), never the user's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, fame2, hasQemu, runCliWithRunDir } from './support/cli';

const mf = (runBase: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}) => runCliWithRunDir(runBase, args, { timeoutMs: 120_000, ...opts });
import { buildImage } from '../server/src/runtime/image';
import { analyzeDocument } from '../server/src/engine/index';
import { computeLayout } from '../server/src/engine/layout/index';
import { compareLayout } from '../server/src/runtime/verify';
import { parseIomem, parseLspci, parsePciResources, splitSnapshot } from '../server/src/runtime/guest-view';



test('guest parsers: iomem tree, lspci BARs with sysfs indexes, snapshot sections', () => {
  const tree = parseIomem('00100000-3ffdefff : System RAM\n  0f400000-10201d31 : Kernel code\n3ffdf000-3fffffff : Reserved\n');
  assert.equal(tree.length, 2);
  assert.equal(tree[0].children[0].name, 'Kernel code');
  const lspci = [
    '00:01.0 VGA compatible controller [0300]: Device [1234:1111] (rev 02) (prog-if 00 [VGA controller])',
    '\tMemory at fd000000 (32-bit, prefetchable) [size=16M]',
    '\tMemory at febd4000 (32-bit, non-prefetchable) [size=4K]',
  ].join('\n');
  const res = parsePciResources('DEV 0000:00:01.0 0x1234 0x1111 0x030000\n0x00000000fd000000 0x00000000fdffffff 0x0000000000042208\n0x0000000000000000 0x0000000000000000 0x0000000000000000\n0x00000000febd4000 0x00000000febd4fff 0x0000000000040200\n');
  const devs = parseLspci(lspci, res);
  assert.deepEqual(devs[0].bars.map((b) => b.bar), [0, 2], 'BAR indexes from sysfs');
  const snap = splitSnapshot('@@MEMFABRIC@@IOMEM\na\n@@MEMFABRIC@@LSPCI\nb\n@@MEMFABRIC@@MEMMAP\nc\n@@MEMFABRIC@@RESOURCES\nd\n@@MEMFABRIC@@KERNEL\n6.12.95+deb12-amd64\n');
  assert.deepEqual(snap, { iomem: 'a', lspci: 'b', memmap: 'c', resources: 'd', kernel: '6.12.95+deb12-amd64' });
});

test('compareLayout reports every differing, missing and extra entry', () => {
  const text = readFileSync(join(REPO, 'examples', 'fame-4node.cluster.xml'), 'utf8');
  const r = analyzeDocument(text, join(REPO, 'examples', 'fame-4node.cluster.xml'));
  const L = computeLayout(r.nodes[0], { agent: true });
  const hx = (v: bigint) => v.toString(16);
  const iomem = L.iomem.map((e) => `${hx(e.start).padStart(8, '0')}-${hx(e.end).padStart(8, '0')} : ${e.name}`);
  const memmap = L.e820.map((e) => `0x${hx(e.start)} 0x${hx(e.end)} ${e.type}`);
  // a guest exactly as predicted
  const same = { iomem: iomem.join('\n'), memmap: memmap.join('\n'), lspci: '', resources: '' };
  const bars = compareLayout('n', L, same);
  assert.ok(bars.differences.every((d) => d.what === 'PCI memory BAR' && d.guest === null), 'only the BARs (no lspci given) differ');
  // one iomem entry renamed, one E820 entry missing
  const changed = { ...same, iomem: iomem.map((l, i) => (i === 0 ? l.replace('System RAM', 'Soft Reserved') : l)).join('\n'), memmap: memmap.slice(1).join('\n') };
  const d = compareLayout('n', L, changed).differences.filter((x) => x.what !== 'PCI memory BAR');
  assert.equal(d.length, 2, JSON.stringify(d));
  assert.equal(d[0].what, '/proc/iomem');
  assert.match(d[0].predicted!, /System RAM/);
  assert.match(d[0].guest!, /Soft Reserved/);
  assert.equal(d[1].what, '/sys/firmware/memmap');
  assert.equal(d[1].guest, null);
});

test('verify, view, console on two FAME nodes (real guests)', { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 600_000 }, async () => {
  await buildImage({}); // cached normally
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-verify-'));
  const run = join(dir, 'run');
  const file = fame2(dir);
  try {
    const boot = mf(run, ['boot', file, '--timeout', '240'], { timeoutMs: 300_000 });
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);

    const v = mf(run, ['verify', file]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /^node01: the guest's memory map equals the prediction/m);
    assert.match(v.stdout, /^node02: the guest's memory map equals the prediction/m);
    const vj = mf(run, ['verify', '--format', 'json', file]);
    assert.equal(vj.status, 0, vj.stderr);
    assert.deepEqual(JSON.parse(vj.stdout), {
      nodes: [
        { name: 'node01', ok: true, differences: [] },
        { name: 'node02', ok: true, differences: [] },
      ],
    });

    const l = mf(run, ['view', file, 'node02', 'lspci', '--format', 'json']);
    assert.equal(l.status, 0, l.stderr);
    const devs = (JSON.parse(l.stdout) as { devices: { vendorDevice: string; bars: { bar: number; size: string; bits: number; prefetchable: boolean }[] }[] }).devices;
    const shm = devs.find((x) => x.vendorDevice === '1af4:1110');
    assert.ok(shm, l.stdout);
    const bar2 = shm.bars.find((b) => b.bar === 2);
    assert.deepEqual(bar2 && { size: bar2.size, bits: bar2.bits, prefetchable: bar2.prefetchable }, { size: '0x800000000', bits: 64, prefetchable: true });
    const io = mf(run, ['view', file, 'node01', 'iomem', '--format', 'json']);
    assert.equal(io.status, 0, io.stderr);
    const tree = (JSON.parse(io.stdout) as { iomem: { name: string; children?: { name: string }[] }[] }).iomem;
    assert.ok(tree.some((e) => e.name === 'System RAM' && e.children?.some((c) => c.name === 'Kernel code')), 'iomem is a tree');

    const con = mf(run, ['console', file, 'node01'], { input: 'echo memfabric-console-$((6*7))-ok\n' });
    assert.equal(con.status, 0, con.stderr);
    const status = JSON.parse(mf(run, ['status', '--format', 'json', file]).stdout) as { nodes: { name: string; state: string; consoleLog: string }[] };
    const log = status.nodes[0].consoleLog;
    let seen = false;
    for (let i = 0; i < 50 && !seen; i++) {
      // the command's output (not only the echoed command line) is in the console log
      seen = /^memfabric-console-42-ok\r?$/m.test(readFileSync(log, 'utf8'));
      if (!seen) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(seen, readFileSync(log, 'utf8').slice(-2000));
    assert.deepEqual(status.nodes.map((n) => n.state), ['ready', 'ready'], 'console leaves the node running');
  } finally {
    mf(run, ['stop', file], { timeoutMs: 60_000 });
    rmSync(dir, { recursive: true, force: true });
  }
});
