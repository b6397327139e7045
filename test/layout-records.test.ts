/**
 * The ground-truth recordings of test/layout (real guests under real QEMU 7.2,
 * NNN-name.guest.json, and QEMU 10.0, NNN-name.guest-10.0.json, written by
 * test/layout/record.mjs) parse, and say basic true things: every config has
 * a recording under both (a config marked `# only: 10.0` under that one only),
 * System RAM is there, QEMU's RAM split adds up to -m, every ivshmem BAR2 is
 * as large as its backend, CXL configs show a CXL Window.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './support/cli';
import { importEsm } from './support/esm';
import { flattenIomem, lspciBars, parseIomem, parseLspci, PciResources, sysfsPciDevices } from '../server/src/runtime/guest-view';

const DIR = join(REPO, 'test', 'layout', 'configs');

interface Recording {
  config: string;
  qemu: string;
  firmware?: string;
  kernel: string;
  argv: string[];
  iomem: string;
  lspci: string;
  lspciVV: string;
  pciResources: PciResources[];
  memmap: { start: string; end: string; type: string }[];
  dmesg: string;
  qom: Record<string, string | null>;
  mtree: string;
}

/** The product's parsers of guest output (memfabric verify/view use them too). */
const p = { parseIomem, flattenIomem, parseLspciBars: lspciBars };
interface RecordModule {
  parseConfig(text: string): { what: string; append: string; only: string | null; argv: string[] };
  recordingName(name: string, mm: string): string;
  majorMinor(versionLine: string): string;
}
/** The QEMU versions (major.minor) every config is recorded under. */
const VERSIONS = ['7.2', '10.0'];

const UNIT: Record<string, bigint> = { '': 1n, B: 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n, T: 1n << 40n };
/** QEMU size (object properties: bytes by default). */
function qemuSize(s: string, defaultUnit = ''): bigint {
  const m = /^(\d+)([BKMGT]?)$/i.exec(s);
  assert.ok(m, `size ${s}`);
  return BigInt(m[1]) * UNIT[(m[2] || defaultUnit).toUpperCase()];
}
/** key=value options of a QEMU option string. */
function opts(s: string): Map<string, string> {
  return new Map(s.split(',').map((kv) => { const i = kv.indexOf('='); return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)]; }));
}

const configs = existsSync(DIR) ? readdirSync(DIR).filter((f) => f.endsWith('.qemu')).sort() : [];

test('there are at least 30 layout configurations, each with a recording under every version it starts under', async () => {
  const r = await importEsm<RecordModule>(join(REPO, 'test', 'layout', 'record.mjs'));
  assert.ok(configs.length >= 30, `${configs.length} configs`);
  for (const mm of VERSIONS) {
    const missing = configs.filter((c) => {
      const only = r.parseConfig(readFileSync(join(DIR, c), 'utf8')).only;
      return (!only || only === mm) && !existsSync(join(DIR, r.recordingName(c.replace(/\.qemu$/, ''), mm)));
    });
    assert.deepEqual(missing, [], `run: node test/layout/record.mjs ${mm === '7.2' ? '' : '--qemu QEMU-' + mm + ' '}<names>`);
  }
  // a config recorded only under one version says so, and has no recording under the others
  for (const c of configs) {
    const only = r.parseConfig(readFileSync(join(DIR, c), 'utf8')).only;
    if (only) for (const mm of VERSIONS.filter((v) => v !== only)) assert.ok(!existsSync(join(DIR, r.recordingName(c.replace(/\.qemu$/, ''), mm))), `${c} is only: ${only}`);
  }
});

test('recordingName: 7.2 keeps NNN-name.guest.json, other versions get their major.minor', async () => {
  const r = await importEsm<RecordModule>(join(REPO, 'test', 'layout', 'record.mjs'));
  assert.equal(r.majorMinor('QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)'), '10.0');
  assert.equal(r.recordingName('023-q35', '7.2'), '023-q35.guest.json');
  assert.equal(r.recordingName('023-q35', '10.0'), '023-q35.guest-10.0.json');
});

test('parseLspciBars: exact BAR indexes from lspci -vv, and from -v with sysfs resources', async () => {
  const vv = [
    '00:01.0 VGA compatible controller [0300]: Device [1234:1111] (rev 02) (prog-if 00 [VGA controller])',
    '\tRegion 0: Memory at fd000000 (32-bit, prefetchable) [size=16M]',
    '\tRegion 2: Memory at febd4000 (32-bit, non-prefetchable) [size=4K]',
    '00:03.0 RAM memory [0500]: Red Hat, Inc. Inter-VM shared memory [1af4:1110] (rev 01)',
    '\tRegion 0: Memory at febd7000 (32-bit, non-prefetchable) [size=256]',
    '\tRegion 2: Memory at 800000000 (64-bit, prefetchable) [size=32G]',
  ].join('\n');
  assert.deepEqual(p.parseLspciBars(vv).map((b) => [b.bdf, b.vendorDevice, b.bar, b.start, b.size, b.bits, b.prefetchable]), [
    ['0000:00:01.0', '1234:1111', 0, 0xfd000000n, 16n << 20n, 32, true],
    ['0000:00:01.0', '1234:1111', 2, 0xfebd4000n, 4096n, 32, false],
    ['0000:00:03.0', '1af4:1110', 0, 0xfebd7000n, 256n, 32, false],
    ['0000:00:03.0', '1af4:1110', 2, 0x800000000n, 32n << 30n, 64, true],
  ]);
  const v = vv.replace(/Region \d: /g, '');
  const res = [{ bdf: '0000:00:01.0', vendorDevice: '1234:1111', class: '0x030000', resources: [{ index: 0, start: '0xfd000000', end: '', flags: '' }, { index: 2, start: '0xfebd4000', end: '', flags: '' }] }];
  assert.deepEqual(p.parseLspciBars(v, res).map((b) => b.bar), [0, 2, 0, 1]); // ivshmem BAR2 inferred as 1 without resources
});

for (const cfg of configs) for (const mm of VERSIONS) {
  const name = cfg.replace(/\.qemu$/, '');
  const file = join(DIR, mm === '7.2' ? `${name}.guest.json` : `${name}.guest-${mm}.json`);
  if (!existsSync(file)) continue;
  test(`layout recording ${name} under QEMU ${mm}`, async () => {
    const r = await importEsm<RecordModule>(join(REPO, 'test', 'layout', 'record.mjs'));
    const rec = JSON.parse(readFileSync(file, 'utf8')) as Recording;
    const { argv } = r.parseConfig(readFileSync(join(DIR, cfg), 'utf8'));
    assert.equal(r.majorMinor(rec.qemu), mm, 'recorded under the version its name says');
    if (rec.firmware !== undefined) assert.match(rec.firmware, mm === '7.2' ? /^1\.16\.2-/ : /^1\.16\.3-/, 'SeaBIOS of that QEMU');

    // iomem parses completely and has System RAM at the top level
    const iomem = p.parseIomem(rec.iomem);
    const all = p.flattenIomem(iomem);
    assert.equal(all.length, rec.iomem.split('\n').filter((l) => l.trim()).length);
    assert.ok(iomem.some((e) => e.name === 'System RAM'), 'System RAM in /proc/iomem');
    for (const e of all) assert.ok(e.start <= e.end, `${e.name}`);
    assert.ok(rec.memmap.some((e) => e.type === 'System RAM'), 'System RAM in /sys/firmware/memmap');
    for (let i = 1; i < rec.memmap.length; i++) assert.ok(BigInt(rec.memmap[i - 1].start) <= BigInt(rec.memmap[i].start), 'memmap sorted');
    assert.match(rec.dmesg, /BIOS-e820: \[mem 0x0000000000000000-/);

    // QEMU's split adds up to -m
    const m = argv[argv.indexOf('-m') + 1].split(',')[0];
    const ram = qemuSize(m.replace(/^size=/, ''), /\d$/.test(m) ? 'M' : '');
    assert.equal(BigInt(rec.qom['below-4g-mem-size']!) + BigInt(rec.qom['above-4g-mem-size']!), ram, 'below + above = -m');
    assert.ok(rec.qom['pci-hole64-start'] && rec.qom['pci-hole64-end']);
    assert.match(rec.mtree, /\(prio \d+, ram\)/);

    // every ivshmem BAR2 is its backend's size; lspci -vv and sysfs agree
    const backends = new Map<string, bigint>();
    const shm: bigint[] = [];
    for (let i = 0; i < argv.length - 1; i++) {
      if (argv[i] === '-object' && /^memory-backend-/.test(argv[i + 1])) {
        const o = opts(argv[i + 1]);
        backends.set(o.get('id')!, qemuSize(o.get('size')!));
      }
      if (argv[i] === '-device' && /^ivshmem-plain,/.test(argv[i + 1])) shm.push(backends.get(opts(argv[i + 1]).get('memdev')!)!);
    }
    const bars = p.parseLspciBars(rec.lspciVV);
    const bar2 = bars.filter((b) => b.vendorDevice === '1af4:1110' && b.bar === 2);
    const sort = (a: bigint[]) => [...a].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    // (A guest whose CPU cannot address the BAR drops it: see bar-beyond-phys-bits in layout.test.ts.)
    if (!argv.some((a) => /phys-bits=/.test(a))) assert.deepEqual(sort(bar2.map((b) => b.size)), sort(shm), 'ivshmem BAR2 sizes = backend sizes');
    for (const b of bar2) {
      assert.equal(b.bits, 64);
      assert.ok(b.prefetchable);
      assert.equal(b.start % b.size, 0n, `BAR2 of ${b.bdf} naturally aligned`);
    }
    for (const b of bars) {
      if (b.start < 0n) continue;
      const dev = rec.pciResources.find((d) => d.bdf === b.bdf);
      const res = dev?.resources.find((x) => x.index === b.bar);
      assert.ok(res, `sysfs resource ${b.bar} of ${b.bdf}`);
      assert.equal(BigInt(res.start), b.start, `${b.bdf} BAR ${b.bar}`);
      assert.equal(BigInt(res.end) - BigInt(res.start) + 1n, b.size, `${b.bdf} BAR ${b.bar} size`);
    }
    // lspci -v (no region numbers) with sysfs resources gives the same BARs
    assert.deepEqual(p.parseLspciBars(rec.lspci, rec.pciResources), bars);
    // and so does sysfs alone (verify in a guest without lspci): the same devices, classes and BARs
    const fromSysfs = sysfsPciDevices(rec.pciResources).map((d) => ({ bdf: d.bdf, vendorDevice: d.vendorDevice, class: d.class, bars: d.bars }));
    const fromLspci = parseLspci(rec.lspci, rec.pciResources).map((d) => ({ bdf: d.bdf, vendorDevice: d.vendorDevice, class: d.class, bars: d.bars }));
    assert.deepEqual(fromSysfs, fromLspci, 'sysfs alone gives the BARs lspci shows');

    // CXL configs show their windows
    if (argv.some((a) => /(^|,)cxl=on(,|$)/.test(a))) {
      const windows = all.filter((e) => /^CXL Window \d+$/.test(e.name));
      const want = new Set(argv.join(' ').match(/cxl-fmw\.\d+\./g));
      assert.equal(windows.length, want.size, 'one CXL Window per cxl-fmw');
    }
  });
}
