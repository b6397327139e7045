/**
 * parseQemuSize / parseQemuRamSize against the live QEMU 7.2 binary, and the
 * libvirt unit parser against §1.3 of the rule reference.
 *
 * Nothing here is a recorded answer: every string is handed to
 * qemu-system-x86_64 and what QEMU did with it is read back from QEMU.
 *
 * How the value is read back without QEMU allocating guest memory:
 *
 *  - size properties (qemu_strtosz via the keyval/QOM visitor, the path of
 *    every -object/-device/-M size property): the string is given as the
 *    `align=` of a memory-backend-file (a size property parsed by the same
 *    visit_type_size() as `size=`) over a 4 KiB file. QEMU then either
 *      rejects it: "Parameter 'align' expects a size value",
 *      prints it:  "alignment 0x… must be multiples of page size 0x1000" /
 *                  "alignment 0x… must be a power of two",
 *      or starts:  QMP qom-get /objects/m align.
 *    A power of two too large to mmap ("unable to map backing store") is read
 *    again as `size=` over the same file: "backing store size 0x1000 does not
 *    match 'size' option 0x…" (page-aligned, exact for a power of two ≥ 4 KiB).
 *  - -m (QemuOpts parse_option_size, then vl.c's legacy "append M when the
 *    last character is a digit", then the machine's keyval `memory.size`):
 *    `-M none -m STR,maxmem=1` makes machine_set_mem print the size it got
 *    ("must be at least the initial memory size (0x…)", rounded up to 8 KiB);
 *    -m 0 starts and QMP qom-get /machine memory answers.
 *  - legacy -numa node,mem= (qemu_strtosz_MiB through the opts visitor, a
 *    number without suffix is MiB): on pc-i440fx-5.0 with -m 1G, QEMU prints
 *    "total memory for NUMA nodes (0x…) should equal RAM size" or starts (1 GiB).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasQemu } from './support/cli';
import {
  GiB,
  KiB,
  MiB,
  U64_MAX,
  alignUp,
  libvirtUnitScale,
  parseLibvirtScaled,
  parseQemuNumaMemSize,
  parseQemuRamSize,
  parseQemuSize,
  SizeResult,
} from '../server/src/engine/text/sizes';

const QEMU = 'qemu-system-x86_64';
const z = (n: number) => '0'.repeat(n);

/** Strings handed to QEMU. The expected outcome is whatever QEMU does. */
const CASES: string[] = [
  // integers, 0, around 2^64
  '0', '1', '7', '1024', '4096', '123456789', '07', '010', '08', '00',
  '18446744073709551615', '18446744073709551614', '18446744073709551616', '99999999999999999999999',
  '18446744073709551615B',
  // every suffix, both cases
  '1b', '1B', '1k', '1K', '1m', '1M', '1g', '1G', '1t', '1T', '1p', '1P', '1e', '1E',
  '1024b', '2M', '4G', '16383P', '16384P', '17179869183G', '17179869184G', '15E', '16E', '20E',
  // multi-character suffixes
  '1GB', '1KiB', '1Mb', '1kB', '1bb', '1MM',
  // fractions
  '1.5G', '1.5g', '1.0', '1.', '1.k', '1.5', '0.5', '0.5K', '.5G', '2M.', '1..5M', '1.5.M', '1.5K', '0.0001K', '0.0005K',
  '1.0000001k', '1.0000001M', '1.001M', '1.5E', '1.5e', '15.5E', '15.99999999E', '1.5B', '1.0B',
  '1.0000000000000000000000000000000001',
  // a fraction that rounds to 1.0 as a double: (uint64_t)(1.0 * 2^64) wraps to 0 on x86-64
  '1.99999999999999999999K', '1.99999999999999999999', '1.99999999999999999999B',
  // a fraction below DBL_MIN or beyond DBL_MAX: strtod reports ERANGE and QEMU skips one
  // character after it. (When nothing follows, QEMU reads past the string's end: undefined,
  // so "1.5e400" alone is not compared.)
  `1.${z(400)}1K`, `1.${z(307)}1KM`, `1.${z(307)}3K`, '1.1e-400K', '1.5e400K', '1.0e-400K', '1.5e-3K',
  // exponents
  '1e3', '1.5e3M', '1.5e+3M', '1E3', '1.5e+',
  // hex
  '0x0', '0x10', '0X10', '0x1000', '0xffffffffffffffff', '0x10000000000000000', '0x1e', '0x1b', '0x1B',
  '0x10M', '0x10m', '0x1k', '0x1P', '0x1p3', '0x', '0xg', '0x1.5', '0x1.5M', '00x10', '0x 10', '-0x10', '+0x10',
  // signs and white space
  '-1M', '-0', '+1M', '+-1', ' 1M', '\t1M', '\n1M', '1M ', '1 M', ' -1', '1-',
  // garbage
  '', ' ', 'M', 'k1', '1_000', '0b1',
];

interface Run {
  code: number | null;
  stderr: string;
  /** The raw text of each QMP "return" answer after the greeting, in order. */
  returns: string[];
}

function runQemu(args: string[], qmp: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(QEMU, ['-display', 'none', '-nodefaults', '-S', '-qmp', 'stdio', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    p.stdin.on('error', () => {}); // QEMU refused the command line and is gone
    p.stdin.end(['qmp_capabilities', ...qmp, 'quit'].map((q) => (q.startsWith('{') ? q : JSON.stringify({ execute: q })) + '\n').join(''));
    const timer = setTimeout(() => p.kill('SIGKILL'), 15000);
    p.on('close', (code) => {
      clearTimeout(timer);
      // Numbers may exceed 2^53: keep their text.
      const returns = [...out.matchAll(/^\{"return": (.*)\}\r?$/gm)].map((m) => m[1]);
      resolve({ code, stderr: err, returns });
    });
  });
}

/** What QEMU made of a string. value is undefined when rejected. */
interface Outcome {
  accepted: boolean;
  value?: bigint;
  /** 'range' / 'invalid' when QEMU's message tells them apart. */
  reason?: 'range' | 'invalid';
  warned: boolean;
  stderr: string;
}

const WARN = 'Using a multiplier suffix on hex numbers is deprecated';

async function probeProperty(s: string, file: string): Promise<Outcome> {
  const qom = JSON.stringify({ execute: 'qom-get', arguments: { path: '/objects/m', property: 'align' } });
  const r = await runQemu(['-M', 'none', '-object', `memory-backend-file,id=m,mem-path=${file},size=4096,align=${s}`], [qom]);
  const warned = r.stderr.includes(WARN);
  if (/Parameter 'align' expects a size value/.test(r.stderr)) return { accepted: false, warned, stderr: r.stderr };
  let m = /alignment 0x([0-9a-f]+) must be (?:multiples of page size|a power of two)/.exec(r.stderr);
  if (m) return { accepted: true, value: BigInt('0x' + m[1]), warned, stderr: r.stderr };
  if (r.returns.length >= 2 && /^[0-9]+$/.test(r.returns[1])) return { accepted: true, value: BigInt(r.returns[1]), warned, stderr: r.stderr };
  if (/unable to map backing store/.test(r.stderr)) {
    // A power of two too large to map: read it as size= instead.
    const r2 = await runQemu(['-M', 'none', '-object', `memory-backend-file,id=m,mem-path=${file},size=${s}`], []);
    m = /does not match 'size' option 0x([0-9a-f]+)/.exec(r2.stderr);
    if (m) return { accepted: true, value: BigInt('0x' + m[1]), warned, stderr: r.stderr + r2.stderr };
  }
  throw new Error(`unexpected QEMU outcome for align=${JSON.stringify(s)}: exit ${r.code}\n${r.stderr}`);
}

async function probeRam(s: string): Promise<Outcome> {
  const qom = JSON.stringify({ execute: 'qom-get', arguments: { path: '/machine', property: 'memory' } });
  const r = await runQemu(['-M', 'none', '-m', `${s},maxmem=1`], [qom]);
  const warned = r.stderr.includes(WARN);
  if (/is out of range for parameter 'size'/.test(r.stderr)) return { accepted: false, reason: 'range', warned, stderr: r.stderr };
  if (/Parameter 'size' expects a non-negative number below 2\^64/.test(r.stderr)) return { accepted: false, reason: 'invalid', warned, stderr: r.stderr };
  // The "…M" that vl.c made of a number was refused by the machine's keyval parser.
  if (/Parameter 'memory\.size' expects size/.test(r.stderr)) return { accepted: false, warned, stderr: r.stderr };
  let m = /must be at least the initial memory size \(0x([0-9a-f]+)\)/.exec(r.stderr);
  if (m) return { accepted: true, value: BigInt('0x' + m[1]), warned, stderr: r.stderr };
  m = /^\{"size": ([0-9]+)/.exec(r.returns[1] ?? '');
  if (m) return { accepted: true, value: BigInt(m[1]), warned, stderr: r.stderr };
  // The size rounded up to 8 KiB wrapped to 0 (only just below 2^64).
  if (/maximum memory size must by aligned/.test(r.stderr)) return { accepted: true, value: 0n, warned, stderr: r.stderr };
  throw new Error(`unexpected QEMU outcome for -m ${JSON.stringify(s)}: exit ${r.code}\n${r.stderr}`);
}

async function probeNumaMem(s: string): Promise<Outcome> {
  const r = await runQemu(['-M', 'pc-i440fx-5.0', '-m', '1G', '-numa', `node,mem=${s}`], []);
  const warned = r.stderr.includes(WARN);
  if (/Parameter 'mem' expects a size value/.test(r.stderr)) return { accepted: false, warned, stderr: r.stderr };
  const m = /total memory for NUMA nodes \(0x([0-9a-f]+)\) should equal RAM size/.exec(r.stderr);
  if (m) return { accepted: true, value: BigInt('0x' + m[1]), warned, stderr: r.stderr };
  if (r.returns.length >= 1) return { accepted: true, value: 1n << 30n, warned, stderr: r.stderr };
  throw new Error(`unexpected QEMU outcome for -numa node,mem=${JSON.stringify(s)}: exit ${r.code}\n${r.stderr}`);
}

async function pool<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const k = next++;
        out[k] = await fn(items[k]);
      }
    }),
  );
  return out;
}

const show = (s: string) => (s.length > 40 ? JSON.stringify(s.slice(0, 18) + '…' + s.slice(-12)) + ` (${s.length} chars)` : JSON.stringify(s));
const ours = (r: SizeResult) => (r.ok ? `accepts ${r.value}${r.warning ? ' with a warning' : ''}` : `rejects (${r.reason}: ${r.detail})`);
const theirs = (o: Outcome) => (o.accepted ? `accepts ${o.value}${o.warned ? ' with a warning' : ''}` : `rejects${o.reason ? ` (${o.reason})` : ''}`);

const qemu = hasQemu();
const skip = qemu ? false : `${QEMU} not found: the size parsers are NOT compared with QEMU`;
if (!qemu) console.log(`# SKIP ${skip}`);

test('enough strings are compared with QEMU', () => {
  assert.ok(new Set(CASES).size === CASES.length, 'duplicate case');
  assert.ok(CASES.length >= 60, `${CASES.length} strings`);
});

test('parseQemuSize, parseQemuRamSize and parseQemuNumaMemSize agree with the live QEMU 7.2', { skip, timeout: 90000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-sizes-'));
  try {
    const file = join(dir, 'backing');
    writeFileSync(file, Buffer.alloc(4096));
    const limit = Math.max(4, cpus().length * 2);
    const started = Date.now();
    // One pool for all runs, so that at most `limit` QEMUs run at a time.
    type Job = { k: number; kind: 'prop' | 'ram' | 'numa' };
    const jobs: Job[] = CASES.flatMap((s, k) => [
      { k, kind: 'prop' as const },
      // -m "" would not be "-m <empty>" once ",maxmem=1" is appended.
      ...(s === '' ? [] : [{ k, kind: 'ram' as const }]),
      // A comma would start another -numa parameter.
      ...(s.includes(',') ? [] : [{ k, kind: 'numa' as const }]),
    ]);
    const props: Outcome[] = [];
    const rams: (Outcome | undefined)[] = [];
    const numas: (Outcome | undefined)[] = [];
    await pool(jobs, limit, async (j) => {
      const s = CASES[j.k];
      if (j.kind === 'prop') props[j.k] = await probeProperty(s, file);
      else if (j.kind === 'ram') rams[j.k] = await probeRam(s);
      else numas[j.k] = await probeNumaMem(s);
    });
    t.diagnostic(`${jobs.length} QEMU runs in ${Date.now() - started} ms`);
    // Not vacuous: QEMU took and refused plenty, and printed values we compare.
    assert.ok(props.filter((o) => o.accepted && o.value! > 0n).length > 40, 'accepted');
    assert.ok(props.filter((o) => !o.accepted).length > 30, 'refused');

    for (const [k, s] of CASES.entries()) {
      await t.test(`size property ${show(s)}`, () => {
        const q = props[k];
        const r = parseQemuSize(s);
        const what = `QEMU ${theirs(q)}, parseQemuSize ${ours(r)}`;
        assert.equal(r.ok, q.accepted, what);
        if (r.ok) {
          assert.equal(r.value, q.value, what);
          assert.equal(!!r.warning, q.warned, what);
          if (r.warning) assert.ok(q.stderr.includes(`warning: ${r.warning}`), `QEMU said: ${q.stderr}\nwe say: ${r.warning}`);
        }
      });
      const n = numas[k];
      if (n) {
        await t.test(`-numa node,mem=${show(s)}`, () => {
          const r = parseQemuNumaMemSize(s);
          const what = `QEMU ${theirs(n)}, parseQemuNumaMemSize ${ours(r)}`;
          assert.equal(r.ok, n.accepted, what);
          if (r.ok) {
            assert.equal(r.value, n.value, what);
            assert.equal(!!r.warning, n.warned, what);
          }
        });
      }
      const q = rams[k];
      if (!q) continue;
      await t.test(`-m ${show(s)}`, () => {
        const r = parseQemuRamSize(s);
        const what = `QEMU ${theirs(q)}, parseQemuRamSize ${ours(r)}`;
        assert.equal(r.ok, q.accepted, what);
        if (r.ok) {
          // machine_set_mem rounds up to 8 KiB (modulo 2^64); 0 is "not given".
          assert.equal(alignUp(r.value, 8192n) & U64_MAX, q.value, what);
          assert.equal(!!r.warning, q.warned, what);
          if (r.warning) assert.ok(q.stderr.includes(`warning: ${r.warning}`), `QEMU said: ${q.stderr}\nwe say: ${r.warning}`);
        } else if (q.reason) {
          assert.equal(r.reason, q.reason, what);
        }
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parseQemuSize: qemu_strtosz_MiB defaults to MiB; -numa mem= checks as bytes first', () => {
  assert.deepEqual(parseQemuSize('512', 'M'), { ok: true, value: 512n * MiB });
  assert.deepEqual(parseQemuSize('512K', 'M'), { ok: true, value: 512n * KiB });
  assert.deepEqual(parseQemuSize('1.5', 'M'), { ok: true, value: 3n * MiB / 2n });
  assert.deepEqual(parseQemuNumaMemSize('512'), { ok: true, value: 512n * MiB });
  assert.equal(parseQemuNumaMemSize('1.5').ok, false);
  assert.deepEqual(parseQemuNumaMemSize('18446744073709551615'), { ok: true, value: U64_MAX });
});

// §1.3 of /work/shared/reference/qemu-rules.md (libvirt virScaleInteger / basictypes.rng "unit").
test('libvirtUnitScale: binary single letters and …iB, decimal …B, bytes', () => {
  for (const [u, power] of [['k', 1n], ['m', 2n], ['g', 3n], ['t', 4n], ['p', 5n], ['e', 6n]] as [string, bigint][]) {
    for (const unit of [u, u.toUpperCase(), `${u}iB`, `${u.toUpperCase()}iB`, `${u}IB`, `${u}ib`]) assert.equal(libvirtUnitScale(unit), 1024n ** power, unit);
    for (const unit of [`${u}B`, `${u.toUpperCase()}B`, `${u}b`, `${u.toUpperCase()}b`]) assert.equal(libvirtUnitScale(unit), 1000n ** power, unit);
  }
  for (const unit of ['b', 'B', 'byte', 'bytes', 'Bytes', 'BYTE']) assert.equal(libvirtUnitScale(unit), 1n, unit);
  assert.equal(libvirtUnitScale('G'), libvirtUnitScale('GiB'));
  assert.equal(libvirtUnitScale('G'), GiB);
  assert.equal(libvirtUnitScale('GB'), 1_000_000_000n);
  for (const unit of ['XB', 'Gi', 'GiBs', 'kbyte', 'bytess', 'KK', '1', '', ' K', 'K ', 'iB']) assert.equal(libvirtUnitScale(unit), undefined, unit);
});

test('parseLibvirtScaled: KiB by default, GB = 10^9, G = GiB = 2^30', () => {
  assert.deepEqual(parseLibvirtScaled('1048576', undefined, 1024n), { ok: true, bytes: GiB, decimal: false });
  assert.deepEqual(parseLibvirtScaled('1048576', '', 1024n), { ok: true, bytes: GiB, decimal: false });
  assert.deepEqual(parseLibvirtScaled('1', 'G', 1024n), { ok: true, bytes: GiB, decimal: false });
  assert.deepEqual(parseLibvirtScaled('1', 'GiB', 1024n), { ok: true, bytes: GiB, decimal: false });
  assert.deepEqual(parseLibvirtScaled('1', 'GB', 1024n), { ok: true, bytes: 1_000_000_000n, decimal: true });
  assert.deepEqual(parseLibvirtScaled('1', 'gb', 1024n), { ok: true, bytes: 1_000_000_000n, decimal: true });
  assert.deepEqual(parseLibvirtScaled('4096', 'bytes', 1024n), { ok: true, bytes: 4096n, decimal: false });
  assert.deepEqual(parseLibvirtScaled('4', 'M', 1n), { ok: true, bytes: 4n * MiB, decimal: false });
  // LV_UNIT_GB_SILENT: 1 GB is 976562.5 KiB, not 1 GiB.
  const gb = parseLibvirtScaled('1', 'GB', 1024n);
  assert.ok(gb.ok && gb.bytes < GiB && (gb.bytes + 1023n) / 1024n === 976563n);
});

test('parseLibvirtScaled: unknown suffix, non-integer, overflow', () => {
  assert.deepEqual(parseLibvirtScaled('1', 'XB', 1024n), { ok: false, detail: "unknown suffix 'XB'" });
  assert.deepEqual(parseLibvirtScaled('1', 'Gi', 1024n), { ok: false, detail: "unknown suffix 'Gi'" });
  assert.deepEqual(parseLibvirtScaled('1.5', 'G', 1024n), { ok: false, detail: "Invalid value '1.5'" });
  for (const v of ['-1', '0x10', '1e3', '', 'one', '1G']) assert.equal(parseLibvirtScaled(v, 'K', 1024n).ok, false, v);
  assert.equal(parseLibvirtScaled('16', 'E', 1024n).ok, false);
  assert.deepEqual(parseLibvirtScaled('15', 'E', 1024n), { ok: true, bytes: 15n << 60n, decimal: false });
  assert.equal(parseLibvirtScaled('18446744073709551616', 'b', 1024n).ok, false);
});
