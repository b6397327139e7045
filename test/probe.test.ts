/**
 * The probe against the real QEMUs: the system's 7.2 (SeaBIOS 1.16.2) and
 * 10.0 (SeaBIOS 1.16.3, ~/.cache/memfabric/qemu-10.0). Each probe is a QEMU
 * run of ~0.3 s; the whole file stays well under a minute.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn as nodeSpawn, execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeDocument } from '../server/src/engine/index';
import { REPO } from './support/cli';
import { computeLayout } from '../server/src/engine/layout/index';
import { NodeModel } from '../server/src/engine/model/model';
import {
  compareWithLayout, parseFirmwareLog, parseMtree, parseQemuError, planProbe, ProbeCache, probeArgv, probeKey, probeNode, probeNodes,
  liveProbePids, ProbeOk, ProbeResult, SpawnHook,
} from '../server/src/runtime/probe';

const Q72 = '/usr/bin/qemu-system-x86_64';
const Q10 = '/root/.cache/memfabric/qemu-10.0/bin/qemu-system-x86_64';
const have = (p: string) => existsSync(p);
const QEMUS = [
  { name: '7.2', bin: Q72, bar2: 0x800000000n },
  // SeaBIOS 1.16.3 puts the 64-bit window at the top of the CPU's address space:
  // TCG's qemu64 is AuthenticAMD with 40 phys-bits, so below the HyperTransport hole at 0xfd00000000.
  { name: '10.0', bin: Q10, bar2: 0xf000000000n },
];

// Everything of this file under one directory: user files, probe scratch dirs, the disk cache.
const ROOT = mkdtempSync(join(tmpdir(), 'mf-probe-test-'));
const USER = join(ROOT, 'user');
const SCRATCH = join(ROOT, 'scratch');
const CACHE = join(ROOT, 'cache');
execFileSync('mkdir', ['-p', USER, SCRATCH, CACHE]);
process.on('exit', () => rmSync(ROOT, { recursive: true, force: true }));

/** A sparse user file with a marker at the start, content and mtime remembered. */
function userFile(name: string, size: bigint): { path: string; check(): void } {
  const path = join(USER, name);
  const fd = openSync(path, 'w', 0o644);
  ftruncateSync(fd, Number(size));
  writeSync(fd, Buffer.from(`USER DATA ${name}\n`), 0, undefined, 0);
  writeSync(fd, Buffer.from('TAIL'), 0, undefined, Number(size) - 4);
  closeSync(fd);
  const st = statSync(path, { bigint: true });
  const ends = () => {
    const f = openSync(path, 'r');
    const a = Buffer.alloc(64);
    const b = Buffer.alloc(4);
    readSync(f, a, 0, 64, 0);
    readSync(f, b, 0, 4, Number(size) - 4);
    closeSync(f);
    return Buffer.concat([a, b]).toString('latin1');
  };
  // the ends only: the file is sparse and may be 32 GiB
  const before = ends();
  return {
    path,
    check() {
      const now = statSync(path, { bigint: true });
      assert.equal(now.size, st.size, `${name}: size changed`);
      assert.equal(now.mtimeNs, st.mtimeNs, `${name}: mtime changed`);
      assert.equal(now.blocks, st.blocks, `${name}: allocated blocks changed`);
      assert.equal(ends(), before, `${name}: content changed`);
    },
  };
}

function nodeOf(text: string, name = 'n.qemu'): NodeModel {
  const r = analyzeDocument(text, join(USER, name));
  assert.equal(r.nodes.length, 1);
  return r.nodes[0];
}

/** Spawns through the probe, and the probe runs among them (a run has -qmp; -version is the binary check). */
function counter(): { spawn: SpawnHook; runs: () => number; all: () => number } {
  const seen: string[][] = [];
  return {
    spawn: (f, a, o) => {
      seen.push(a);
      return nodeSpawn(f, a, o);
    },
    runs: () => seen.filter((a) => a.includes('-qmp')).length,
    all: () => seen.length,
  };
}

/** Our QEMUs still alive: anything whose command line names this file's scratch directory. */
function ourQemus(): string[] {
  try {
    return execFileSync('pgrep', ['-af', SCRATCH], { encoding: 'utf8' }).split('\n').filter((l) => l.trim() && !l.includes('pgrep'));
  } catch {
    return [];
  }
}

function assertClean() {
  assert.deepEqual(ourQemus(), [], 'a probe QEMU is still running');
  assert.deepEqual(readdirSync(SCRATCH), [], 'a probe directory was left behind');
}

const base = { tmpDir: SCRATCH, accel: 'tcg' as const, timeoutMs: 20_000 };
const mem = () => new ProbeCache({ dir: false });

const fam = userFile('fam.raw', 32n << 30n);
const FAME = `qemu-system-x86_64 -machine q35 -m 1G \\
  -object memory-backend-file,id=fam,mem-path=fam.raw,size=32G,share=on \\
  -device ivshmem-plain,id=fam-shm,memdev=fam`;

const E820_FAME = [
  ['0x0', '0x9fbff', 'System RAM'],
  ['0x9fc00', '0x9ffff', 'Reserved'],
  ['0xf0000', '0xfffff', 'Reserved'],
  ['0x100000', '0x3ffdefff', 'System RAM'],
  ['0x3ffdf000', '0x3fffffff', 'Reserved'],
  ['0xb0000000', '0xbfffffff', 'Reserved'],
  ['0xfed1c000', '0xfed1ffff', 'Reserved'],
  ['0xfffc0000', '0xffffffff', 'Reserved'],
  ['0xfd00000000', '0xffffffffff', 'Reserved'],
];
const hx = (v: bigint) => '0x' + v.toString(16);

for (const q of QEMUS) {
  test(`FAME node under QEMU ${q.name}: BAR 2, E820 table, QEMU's regions; the user's file untouched`, { skip: !have(q.bin) && `${q.bin} missing` }, async () => {
    const node = nodeOf(FAME);
    const r = await probeNode(node, { ...base, qemu: q.bin, cache: mem() });
    assert.ok(r.ok, !r.ok ? `${r.reason}: ${r.message}` : '');
    const ok = r as ProbeOk;
    assert.ok(ok.qemuVersion.startsWith(q.name + '.'), ok.qemuVersion);
    assert.match(ok.firmware, q.name === '7.2' ? /^1\.16\.2/ : /^1\.16\.3/);
    const shm = ok.bars.find((b) => b.bar === 2 && b.size === 32n << 30n);
    assert.ok(shm, 'ivshmem BAR 2');
    assert.equal(hx(shm!.start), hx(q.bar2));
    assert.equal(shm!.kind, 'prefmem');
    assert.deepEqual(ok.e820.map((e) => [hx(e.start), hx(e.end), e.type]), E820_FAME);
    assert.equal(ok.hole64?.start, q.bar2);
    assert.ok(ok.regions.some((x) => x.name === 'ram-below-4g' && x.end === (1n << 30n) - 1n));
    assert.deepEqual(ok.standIns.map((s) => [s.role, s.path, s.kind, s.size, s.caveat]), [['mem-path', fam.path, 'file', 32n << 30n, undefined]]);
    fam.check();
    assertClean();

    // memfabric's prediction is QEMU 7.2 + SeaBIOS 1.16.2: it agrees with 7.2, and 10.0 moves BAR 2 and the hole
    const diffs = compareWithLayout(computeLayout(node, { agent: false }), r);
    if (q.name === '7.2') assert.deepEqual(diffs.map((d) => d.message), []);
    else {
      const bar = diffs.find((d) => d.kind === 'bar' && d.bar === 2);
      assert.ok(bar && bar.kind === 'bar');
      assert.equal(bar.layout?.start, 0x800000000n);
      assert.equal(bar.probe?.start, q.bar2);
      assert.ok(diffs.some((d) => d.kind === 'hole64'));
    }
  });
}

test('CXL under QEMU 10.0: fixed memory window and host registers from info mtree', { skip: !have(Q10) && 'no QEMU 10.0' }, async () => {
  userFile('cxl0.raw', 256n << 20n);
  userFile('lsa0.raw', 256n << 20n);
  const node = nodeOf(`qemu-system-x86_64 -M q35,cxl=on -m 1G \\
  -object memory-backend-file,id=m0,size=256M,mem-path=cxl0.raw,share=on \\
  -object memory-backend-file,id=l0,size=256M,mem-path=lsa0.raw,share=on \\
  -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \\
  -device cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2 \\
  -device cxl-type3,bus=rp0,persistent-memdev=m0,lsa=l0,id=cxl-pmem0 \\
  -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G`, 'cxl.qemu');
  const r = await probeNode(node, { ...base, qemu: Q10, cache: mem() });
  assert.ok(r.ok, !r.ok ? r.message : '');
  assert.deepEqual((r as ProbeOk).cxlWindows.map((w) => [hx(w.start), hx(w.end)]), [['0x110000000', '0x20fffffff']]);
  assert.deepEqual((r as ProbeOk).cxlHostRegisters.map((w) => hx(w.start)), ['0x100000000']);
  assertClean();
});

test('QEMU 7.2 refuses cxl-type3 without lsa: its exact text and the option', { skip: !have(Q72) && 'no QEMU 7.2' }, async () => {
  const argv = [
    'qemu-system-x86_64', '-M', 'q35,cxl=on', '-m', '1G',
    '-object', `memory-backend-file,id=m0,size=256M,mem-path=${join(USER, 'c.raw')},share=on`,
    '-device', 'pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1',
    '-device', 'cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2',
    '-device', 'cxl-type3,bus=rp0,memdev=m0,id=cxl-pmem0',
    '-M', 'cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G',
  ];
  const r = await probeArgv(argv, { ...base, qemu: Q72, cache: mem() });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.reason, 'refused');
  assert.equal(r.message, 'lsa property must be set');
  assert.equal(r.option, '-device cxl-type3,bus=rp0,memdev=m0,id=cxl-pmem0');
  assert.equal(r.argIndex, 11);
  assert.equal(r.exitCode, 1);
  // the backend's file did not exist: QEMU created its stand-in in the scratch directory, not the user's
  assert.equal(existsSync(join(USER, 'c.raw')), false);
  assert.equal(r.standIns[0].kind, 'absent');
  assertClean();
});

for (const q of QEMUS) {
  test(`QEMU ${q.name} refuses a backend larger than its existing file; the file is untouched`, { skip: !have(q.bin) && `${q.bin} missing` }, async () => {
    const small = userFile('small.raw', 1n << 30n);
    const argv = ['qemu-system-x86_64', '-M', 'q35', '-m', '1G', '-object', `memory-backend-file,id=fm,size=2G,mem-path=${small.path},share=on`, '-device', 'ivshmem-plain,memdev=fm'];
    const r = await probeArgv(argv, { ...base, qemu: q.bin, cache: mem() });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.reason, 'refused');
    assert.equal(r.message, q.name === '7.2'
      ? "backing store size 0x40000000 does not match 'size' option 0x80000000"
      : "fm backing store size 0x40000000 is too small for 'size' option 0x80000000 plus 'offset' option 0x0");
    // QEMU names no option here: the probe infers the one backend whose file is that small
    assert.equal(r.option, argv.slice(5, 7).join(' '));
    assert.equal(r.optionInferred, true);
    small.check();
    assertClean();
  });
}

test('the firmware running out of 32-bit PCI space is a firmware stop, and a disagreement where memfabric does not see it', { skip: !have(Q72) && 'no QEMU 7.2' }, async () => {
  const node = nodeOf(`qemu-system-x86_64 -M q35 -m 1G ${[1, 2, 3, 4].map((k) => `-device secondary-vga,vgamem_mb=256,id=v${k}`).join(' ')}`, 'vga.qemu');
  const r = await probeNode(node, { ...base, qemu: Q72, cache: mem() });
  assert.equal(!r.ok && r.reason, 'firmware');
  assert.equal(!r.ok && r.message, 'the firmware stopped: PCI: out of 32bit address space');
  // memfabric's PCI catalog gives secondary-vga its default 16 MiB BAR (vgamem_mb is not read): it predicts a map
  const L = computeLayout(node, { agent: false });
  const d = compareWithLayout(L, r);
  if (L.exhausted32) assert.deepEqual(d, []);
  else assert.deepEqual(d.map((x) => [x.kind, x.kind === 'outcome' && x.probe]), [['outcome', 'the firmware stopped: PCI: out of 32bit address space']]);
  assertClean();
});

test('a hang (-S: the firmware never runs) ends at the timeout with no process left', { skip: !have(Q72) && 'no QEMU' }, async () => {
  const t0 = Date.now();
  const r = await probeArgv(['qemu-system-x86_64', '-M', 'q35', '-m', '512M', '-S'], { ...base, qemu: Q72, timeoutMs: 1500, graceMs: 300, cache: mem() });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'timeout');
  assert.match(!r.ok ? r.message : '', /did not print its memory map within 1\.5 s/);
  assert.ok(Date.now() - t0 < 10_000);
  assertClean();
});

test('a probe QEMU is known to the exit hook from the moment it has a pid (a SIGTERM before its spawn event left it running)', { skip: !have(Q72) && 'no QEMU' }, async () => {
  // In the microtask queued while spawning: before the 'spawn' event's continuation runs (a signal
  // handled there found no hook and no QEMU to end). The language server's first probe raced a SIGTERM so.
  let seen: { pid?: number; live: boolean } | undefined;
  const spawn: SpawnHook = (f, a, o) => {
    const p = nodeSpawn(f, a, o);
    if (a.includes('-qmp')) queueMicrotask(() => (seen = { pid: p.pid, live: liveProbePids().includes(p.pid!) }));
    return p;
  };
  const r = await probeArgv(['qemu-system-x86_64', '-M', 'q35', '-m', '512M', '-S'], { ...base, qemu: Q72, timeoutMs: 1000, graceMs: 300, spawn, cache: mem() });
  assert.equal(!r.ok && r.reason, 'timeout');
  assert.ok(seen?.pid, 'the probe spawned QEMU');
  assert.deepEqual(seen, { pid: seen.pid, live: true });
  assert.deepEqual(liveProbePids(), [], 'and forgot it once it ended');
  assertClean();
});

test('abort ends the probe and its QEMU', { skip: !have(Q10) && 'no QEMU 10.0' }, async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 300);
  const r = await probeArgv(['qemu-system-x86_64', '-M', 'q35', '-m', '512M', '-S'], { ...base, qemu: Q10, signal: ac.signal, cache: mem() });
  assert.equal(!r.ok && r.reason, 'aborted');
  assertClean();
  // aborted before it starts: nothing spawned
  const c = counter();
  const r2 = await probeArgv(['qemu-system-x86_64', '-M', 'q35'], { ...base, qemu: Q10, signal: AbortSignal.abort(), spawn: c.spawn, cache: mem() });
  assert.equal(!r2.ok && r2.reason, 'aborted');
  assert.equal(c.all(), 0);
});

test('a missing, non-executable or non-QEMU binary gives a clear message, never a throw', async () => {
  const argv = ['qemu-system-x86_64', '-M', 'q35', '-m', '1G'];
  const notExec = join(USER, 'not-exec');
  writeFileSync(notExec, '#!/bin/sh\necho hi\n', { mode: 0o644 });
  const fake = join(USER, 'fake-qemu');
  writeFileSync(fake, '#!/bin/sh\necho "I am not an emulator"\nexit 3\n', { mode: 0o755 });
  const cases: [string, RegExp][] = [
    [join(USER, 'nope', 'qemu-system-x86_64'), /is not there/],
    ['qemu-system-nonexistent-arch', /not found in PATH/],
    [notExec, /is not an executable file/],
    [fake, /is not QEMU: .*exited with status 3 and printed 'I am not an emulator'/],
    ['/bin/true', /is not QEMU: .*printed nothing/],
  ];
  for (const [bin, re] of cases) {
    const r: ProbeResult = await probeArgv(argv, { ...base, qemu: bin, cache: mem() });
    assert.equal(r.ok, false, bin);
    assert.equal(!r.ok && r.reason, 'binary', bin);
    assert.match(!r.ok ? r.message : '', re);
  }
  assertClean();
});

test('identical nodes are probed once; a warm disk cache spawns nothing', { skip: !have(Q72) && 'no QEMU 7.2' }, async () => {
  // six nodes of one shape, each on its own backing file of the same size, different names
  const nodes = [...Array(6).keys()].map((k) => {
    userFile(`shape-${k}.raw`, 8n << 30n);
    return nodeOf(`qemu-system-x86_64 -name node${k} -machine q35 -m 1G -object memory-backend-file,id=fam,mem-path=shape-${k}.raw,size=8G,share=on -device ivshmem-plain,id=fam-shm,memdev=fam`, `shape-${k}.qemu`);
  });
  // and one of another shape (its file is larger)
  userFile('other.raw', 16n << 30n);
  nodes.push(nodeOf('qemu-system-x86_64 -machine q35 -m 1G -object memory-backend-file,id=fam,mem-path=other.raw,size=16G,share=on -device ivshmem-plain,id=fam-shm,memdev=fam', 'other.qemu'));
  const keys = nodes.map((n) => probeKey(['qemu-system-x86_64', ...n.args.flatMap((a) => [`-${a.name}`, ...(a.value ? [a.value.text] : [])])], { ...base, qemu: Q72, cwd: n.baseDir }));
  assert.equal(new Set(keys.slice(0, 6)).size, 1);
  assert.notEqual(keys[6], keys[0]);

  const cold = counter();
  const cache = new ProbeCache({ dir: CACHE });
  const res = await probeNodes(nodes, { ...base, qemu: Q72, spawn: cold.spawn, cache });
  assert.equal(cold.runs(), 2, 'one QEMU per shape');
  assert.ok(res.every((x) => x.result.ok));
  const bar2 = (r: ProbeResult) => (r as ProbeOk).bars.find((b) => b.bar === 2 && b.kind === 'prefmem')!.start;
  assert.equal(bar2(res[0].result), bar2(res[5].result));
  // each node's result names its own file
  assert.deepEqual(res.map((x) => x.result.standIns[0].path), nodes.map((n, k) => join(USER, k < 6 ? `shape-${k}.raw` : 'other.raw')));
  assert.equal(res[1].result.cached, 'memory');
  assert.equal(readdirSync(CACHE).filter((f) => f.endsWith('.json')).length, 2);

  // a fresh process's view: a new cache object on the same directory
  const warm = counter();
  const again = await probeNodes(nodes, { ...base, qemu: Q72, spawn: warm.spawn, cache: new ProbeCache({ dir: CACHE }) });
  assert.equal(warm.all(), 0, 'nothing spawned on a warm cache');
  assert.equal(again[0].result.cached, 'disk');
  assert.deepEqual(again.map((x) => bar2(x.result)), res.map((x) => bar2(x.result)));
  assert.equal((again[6].result as ProbeOk).e820.length, (res[6].result as ProbeOk).e820.length);
  // read back whole from the disk: every address a bigint again, every other value as QEMU's run gave it
  // (as JSON with each bigint marked: the fields left undefined are not written to the disk)
  const bare = (r: ProbeResult) => JSON.stringify({ ...r, cached: undefined }, (_k, v) => (typeof v === 'bigint' ? `bigint ${v}` : v));
  for (const i of [0, 6]) assert.equal(bare(again[i].result), bare(res[i].result));
  assert.equal(typeof (again[0].result as ProbeOk).e820[0].end, 'bigint');
  assertClean();
});

test('a shape that times out is run once for all its nodes', { skip: !have(Q72) && 'no QEMU 7.2' }, async () => {
  const nodes = [0, 1, 2].map((k) => nodeOf(`qemu-system-x86_64 -name h${k} -M q35 -m 512M -S`, `hang-${k}.qemu`));
  const c = counter();
  const res = await probeNodes(nodes, { ...base, qemu: Q72, timeoutMs: 1000, graceMs: 200, spawn: c.spawn, cache: mem() });
  assert.equal(c.runs(), 1);
  assert.deepEqual(res.map((x) => !x.result.ok && x.result.reason), ['timeout', 'timeout', 'timeout']);
  assertClean();
});

test('the fame-4node example: four nodes, one QEMU, and the example directory gets no fam.raw', { skip: !have(Q10) && 'no QEMU 10.0' }, async () => {
  const file = join(REPO, 'examples', 'fame-4node.cluster.xml');
  const r = analyzeDocument(readFileSync(file, 'utf8'), file);
  assert.equal(r.nodes.length, 4);
  const had = existsSync(join(REPO, 'examples', 'fam.raw'));
  const c = counter();
  const res = await probeNodes(r.nodes, { ...base, qemu: Q10, spawn: c.spawn, cache: mem() });
  assert.equal(c.runs(), 1);
  assert.ok(res.every((x) => x.result.ok && (x.result as ProbeOk).bars.some((b) => b.bar === 2 && b.start === 0xf000000000n)));
  assert.equal(existsSync(join(REPO, 'examples', 'fam.raw')), had);
  assertClean();
});

test('the plan: host files become stand-ins, chardevs null, outputs and guest dropped; devices are noted', () => {
  const argv = [
    'qemu-system-x86_64', '-name', 'x', '-M', 'q35', '-m', '2G', '-kernel', '/boot/vmlinuz', '-append', 'memmap=1G!4G',
    '-object', 'memory-backend-file,id=d,mem-path=/dev/null,size=1G,prealloc=on,align=2M',
    '-object', `memory-backend-file,id=h,mem-path=${USER},size=1G`,
    '-chardev', 'socket,id=c0,path=/run/ivshmem.sock', '-serial', 'file:/var/log/x', '-qmp', 'unix:/run/q.sock,server=on,wait=off',
    '-drive', `file=${fam.path},format=qcow2,if=none,id=d0`, '-netdev', 'tap,id=n0,ifname=tap0', '-pidfile', '/run/x.pid',
    '-device', 'ivshmem-doorbell,chardev=c0,vectors=1',
  ];
  const p = planProbe(argv, USER);
  const t = p.template.join(' ');
  for (const gone of ['-name', '-kernel', '-append', '/run/', '/var/log', '-pidfile', '/dev/null', fam.path, 'tap0', 'prealloc=on']) assert.ok(!t.includes(gone), `${gone} in ${t}`);
  assert.match(t, /-chardev null,id=c0/);
  assert.match(t, /-netdev hubport,id=n0,hubid=0/);
  assert.match(t, /format=raw/);
  assert.match(t, /prealloc=off/);
  assert.deepEqual(p.standIns.map((s) => [s.role, s.kind, s.size]), [['mem-path', 'char-device', 1n << 30n], ['mem-path', 'directory', undefined], ['file', 'file', 32n << 30n], ['chardev', 'other', undefined]]);
  assert.match(p.standIns[3].caveat ?? '', /ivshmem-doorbell talks to the program behind chardev 'c0' \(\/run\/ivshmem.sock\)/);
  assert.match(p.standIns[0].caveat ?? '', /alignment/);
  assert.equal(p.origin[p.template.indexOf('-drive')], argv.indexOf('-drive'));
  // host devices are refused, not probed
  assert.match(planProbe(['q', '-device', 'vfio-pci,host=01:00.0']).unsupported?.message ?? '', /host device/);
  assert.match(planProbe(['q', '-tpmdev', 'passthrough,id=t,path=/dev/tpm0']).unsupported?.message ?? '', /host device/);
});

test('parsers: SeaBIOS log, info mtree, QEMU error form', () => {
  const log = [
    'SeaBIOS (version 1.16.3-debian-1.16.3-2~bpo12+1)',
    'physbits: signature="GenuineIntel", pae=yes, lm=yes, phys-bits=39, valid=yes',
    'qemu/e820: addr 0x0000000000000000 len 0x0000000040000000 [RAM]',
    'PCI: IO: c000 - c05f',
    'PCI: 32: 00000000c0000000 - 00000000fec00000',
    'PCI: 64: 0000007800000000 - 0000008000000000',
    'PCI: map device bdf=00:01.0  bar 2, addr 7800000000, size 800000000 [prefmem]',
    'PCI: map device bdf=00:1f.3  bar 4, addr 0000c000, size 00000040 [io]',
    'e820 map has 2 items:',
    '  0: 0000000000000000 - 000000000009fc00 = 1 RAM',
    '  1: 000000000009fc00 - 00000000000a0000 = 2 RESERVED',
    '',
  ].join('\n');
  const f = parseFirmwareLog(log);
  assert.equal(f.complete, true);
  assert.equal(f.firmware, '1.16.3-debian-1.16.3-2~bpo12+1');
  assert.deepEqual(f.cpu, { vendor: 'GenuineIntel', physBits: 39 });
  assert.deepEqual(f.bars[0], { bdf: '0000:00:01.0', bar: 2, start: 0x7800000000n, size: 0x800000000n, kind: 'prefmem' });
  assert.equal(f.bars[1].kind, 'io');
  assert.deepEqual(f.windows64, [{ start: 0x7800000000n, end: 0x7fffffffffn }]);
  assert.deepEqual(f.e820, [{ start: 0n, end: 0x9fbffn, type: 'System RAM', code: 1 }, { start: 0x9fc00n, end: 0x9ffffn, type: 'Reserved', code: 2 }]);
  // a table cut short is not complete; a firmware stop is seen
  assert.equal(parseFirmwareLog(log.split('\n').slice(0, 10).join('\n') + '\n').complete, false);
  assert.equal(parseFirmwareLog('SeaBIOS (version x)\nPCI: out of 32bit address space\n').stopped, 'PCI: out of 32bit address space');

  const mt = parseMtree([
    'address-space: cpu-memory-0', 'address-space: memory',
    '  0000000000000000-ffffffffffffffff (prio 0, i/o): system',
    '    0000000000000000-000000003fffffff (prio 0, ram): alias ram-below-4g @pc.ram 0000000000000000-000000003fffffff',
    '    0000000000000000-ffffffffffffffff (prio -1, i/o): pci',
    '      000000f000000000-000000f7ffffffff (prio 1, ram): ivshmem.bar2',
    '    0000000110000000-000000020fffffff (prio 0, i/o): cxl-fixed-memory-region',
    '    00000000fed1c000-00000000fed1ffff (prio 1, i/o): lpc-rcrb-mmio [disabled]',
    '', 'address-space: I/O', '  0000000000000000-000000000000ffff (prio 0, i/o): io',
  ].join('\n'));
  assert.deepEqual(mt.map((r) => [r.depth, r.name, r.priority, r.kind]), [[0, 'ram-below-4g', 0, 'ram'], [0, 'pci', -1, 'i/o'], [1, 'ivshmem.bar2', 1, 'ram'], [0, 'cxl-fixed-memory-region', 0, 'i/o'], [0, 'lpc-rcrb-mmio', 1, 'i/o']]);
  assert.deepEqual(mt[0].alias, { target: 'pc.ram', start: 0n, end: 0x3fffffffn });
  assert.equal(mt[4].disabled, true);

  const argv = ['qemu-system-x86_64', '-M', 'q35', '-device', 'cxl-type3,bus=rp0,memdev=m0', '-m', '1G'];
  assert.deepEqual(parseQemuError('qemu-system-x86_64: failed to initialize module: /x.so\nOnly modules from the same build can be loaded.\nqemu-system-x86_64: -device cxl-type3,bus=rp0,memdev=m0: lsa property must be set\n', argv), {
    message: 'lsa property must be set', location: '-device cxl-type3,bus=rp0,memdev=m0', argIndex: 3,
  });
  assert.deepEqual(parseQemuError('qemu-system-x86_64: warning: x\nqemu-system-x86_64: cannot set up guest memory \'pc.ram\': Cannot allocate memory\n', argv), { message: "cannot set up guest memory 'pc.ram': Cannot allocate memory" });
});

test('no probe QEMU and no probe directory left at the end', () => {
  assertClean();
  chmodSync(ROOT, 0o700);
});
