/**
 * The layout prediction against real guests: every configuration in
 * test/layout/configs was booted under QEMU 7.2 (SeaBIOS 1.16.2:
 * NNN-name.guest.json) and QEMU 10.0 (SeaBIOS 1.16.3: NNN-name.guest-10.0.json)
 * with a Debian Linux guest (node test/layout/record.mjs [--qemu BIN]
 * re-records them). For each recording, the layout predicted for the QEMU and
 * SeaBIOS it was made with — its top-level /proc/iomem entries from 1 MiB up,
 * the firmware E820 map (/sys/firmware/memmap) and every memory BAR (lspci) —
 * must equal the recording entry by entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeDocument } from '../server/src/engine/index';
import { computeLayout } from '../server/src/engine/layout/index';
import { bdf } from '../server/src/engine/layout/pci';
import { lspciBars as parseLspciBars } from '../server/src/runtime/guest-view';
import { bundledFirmware } from '../server/src/engine/layout/versions';
import { bundledProfile } from '../server/src/engine/qemu/profile';
import { REPO } from './support/cli';

const DIR = join(REPO, 'test', 'layout', 'configs');
const configs = readdirSync(DIR).filter((f) => f.endsWith('.qemu')).sort();
const files = readdirSync(DIR);
const hx = (v: bigint) => v.toString(16);

/** The recordings of one config: NNN-name.guest.json (QEMU 7.2) and NNN-name.guest-X.Y.json. */
function recordingsOf(config: string, names: string[] = files): { file: string; mm: string }[] {
  const name = config.replace(/\.qemu$/, '');
  const out: { file: string; mm: string }[] = [];
  if (names.includes(`${name}.guest.json`)) out.push({ file: `${name}.guest.json`, mm: '7.2' });
  for (const f of names.sort()) {
    const m = /^(.*)\.guest-(\d+\.\d+)\.json$/.exec(f);
    if (m && m[1] === name) out.push({ file: f, mm: m[2] });
  }
  return out;
}

test('at least 25 recorded configurations under QEMU 7.2 and under 10.0', () => {
  for (const mm of ['7.2', '10.0']) assert.ok(configs.filter((f) => recordingsOf(f).some((r) => r.mm === mm)).length >= 25, mm);
});

for (const f of configs) {
  const recs = recordingsOf(f);
  if (!recs.length) test(`layout ${f} equals what the guest shows`, { skip: 'not recorded' }, () => {});
  for (const { file: recName, mm } of recs) test(`layout ${f} under QEMU ${mm} equals what the guest shows`, async () => {
    const rec = JSON.parse(readFileSync(join(DIR, recName), 'utf8'));
    // The QEMU and SeaBIOS of the recording (7.2 recordings made before the firmware was recorded ran Debian's 1.16.2).
    const version = /QEMU emulator version (\d+\.\d+\.\d+)/.exec(rec.qemu)![1];
    const firmware = /^(\d+\.\d+\.\d+)/.exec(rec.firmware ?? '')?.[1] ?? bundledFirmware(version);
    let text = readFileSync(join(DIR, f), 'utf8');
    const app = /^# append: (.*)$/m.exec(text);
    if (app) text = `${text.trimEnd()} \\\n  -append '${app[1]}'\n`;
    const profile = { ...bundledProfile(version), version, firmware: { name: 'SeaBIOS', version: firmware } };
    const r = analyzeDocument(text, join(DIR, f), undefined, undefined, { qemu: profile });
    // These configurations boot; the only error allowed is a silent failure the guest itself shows.
    const silent = ['cxl-bar-overlap', 'bar-beyond-phys-bits'];
    assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error' && !silent.includes(d.code)).map((d) => d.message), []);
    const L = computeLayout(r.nodes[0], { agent: true, qemu: { version, firmware } });
    assert.equal(L.qemuVersion, version);
    assert.equal(L.firmware, firmware);

    const realTop = (rec.iomem as string)
      .split('\n')
      .filter((l) => l && !l.startsWith(' '))
      .map((l) => {
        const [range, name] = l.split(' : ');
        const [s, e] = range.split('-');
        return { start: BigInt('0x' + s), end: BigInt('0x' + e), name };
      })
      .filter((e) => e.start >= 0x100000n)
      .map((e) => `${hx(e.start)}-${hx(e.end)} ${e.name}`);
    assert.deepEqual(L.iomem.map((e) => `${hx(e.start)}-${hx(e.end)} ${e.name}`), realTop, '/proc/iomem top level');

    const realE820 = (rec.memmap as { start: string; end: string; type: string }[]).map((e) => `${hx(BigInt(e.start))}-${hx(BigInt(e.end))} ${e.type}`);
    assert.deepEqual(L.e820.map((e) => `${hx(e.start)}-${hx(e.end)} ${e.type}`), realE820, '/sys/firmware/memmap');

    const realBars = parseLspciBars(rec.lspci, rec.pciResources)
      .map((b) => `${b.bdf} BAR${b.bar} ${hx(b.start)} ${hx(b.size)} ${b.bits} ${b.prefetchable ? 'pref' : ''}`)
      .sort();
    const bars = L.bars.map((b) => `${b.bdf} BAR${b.bar} ${hx(b.start)} ${hx(b.size)} ${b.bits} ${b.prefetchable ? 'pref' : ''}`).sort();
    assert.deepEqual(bars, realBars, 'PCI memory BARs');

    // cxl-bar-overlap is reported exactly when the guest has a BAR on the CXL host registers or a window.
    const cxl = L.platform.cxl;
    const onCxl = parseLspciBars(rec.lspci, rec.pciResources).some(
      (b) => !!cxl && [{ s: cxl.base, e: cxl.base + 0xfffffn }, ...cxl.windows.map((w) => ({ s: w.base, e: w.base + w.size - 1n }))].some((x) => b.start <= x.e && x.s <= b.start + b.size - 1n),
    );
    assert.equal(r.diagnostics.some((d) => d.code === 'cxl-bar-overlap'), onCxl, 'cxl-bar-overlap against the guest');
    // bar-beyond-phys-bits is reported exactly when the guest kernel could not keep a BAR of a device
    // the user wrote where the firmware put it beyond the CPU's physical address bits (memfabric's own
    // agent device is not the user's to fix: SeaBIOS 1.16.3 can put it at 2^phys-bits, see 083).
    const limit = 1n << BigInt(L.platform.physBits);
    const userBdfs = new Set(L.functions.filter((fn) => fn.source).map((fn) => bdf(fn)));
    const dropped = [...(rec.dmesg as string).matchAll(/pci (\S+): BAR \d+ \[mem 0x([0-9a-f]+)-0x[0-9a-f]+[^\]]*\]: can't claim/g)].some((m) => BigInt('0x' + m[2]) >= limit && userBdfs.has(m[1]));
    assert.equal(r.diagnostics.some((d) => d.code === 'bar-beyond-phys-bits'), dropped, 'bar-beyond-phys-bits against the guest');
  });
}

test("the guest kernel's /proc/iomem names: 6.1 says PCI MMCONFIG and lists Local APIC, 6.12 says PCI ECAM and does not (both measured); a topology node's built-in guest follows its QEMU", async () => {
  const { computeLayout, ecamName, linuxAtLeast } = await import('../server/src/engine/layout/index');
  const { analyzeDocument } = await import('../server/src/engine/index');
  const node = analyzeDocument('qemu-system-x86_64 -M q35 -m 1G', '/x/a.qemu').nodes[0];
  const names = (linux?: string) => computeLayout(node, { linux }).iomem.map((e) => e.name);
  assert.ok(names().includes('PCI MMCONFIG 0000 [bus 00-ff]') && names().includes('Local APIC'));
  assert.ok(names('6.1.0-57-amd64').includes('Local APIC'));
  assert.ok(names('6.12.95+deb12-amd64').includes('PCI ECAM 0000 [bus 00-ff]'));
  assert.ok(!names('6.12.95+deb12-amd64').includes('Local APIC'));
  assert.equal(ecamName('6.11.2'), 'PCI MMCONFIG 0000 [bus 00-ff]');
  assert.equal(linuxAtLeast('7.0', 6, 12), true);
  // a topology node boots the built-in guest: 6.12 under QEMU 10.0 (by default), 6.1 under 7.2
  const topo = analyzeDocument('<cluster name="c"><node name="n" machine="q35" memory="1G"/></cluster>', '/x/c.cluster.xml').nodes[0];
  assert.ok(computeLayout(topo, { qemu: { version: '10.0.2' } }).iomem.some((e) => e.name === 'PCI ECAM 0000 [bus 00-ff]'));
  assert.ok(computeLayout(topo, { qemu: { version: '7.2.22' } }).iomem.some((e) => e.name === 'PCI MMCONFIG 0000 [bus 00-ff]'));
});
