/**
 * The layout prediction against real guests: every configuration in
 * test/layout/configs was booted under QEMU 7.2 with SeaBIOS and a Debian
 * Linux guest (node test/layout/record.mjs re-records them). The predicted
 * top-level /proc/iomem entries from 1 MiB up, the firmware E820 map
 * (/sys/firmware/memmap) and every memory BAR (lspci) must equal the
 * recording entry by entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeDocument } from '../server/src/engine/index';
import { computeLayout } from '../server/src/engine/layout/index';
import { lspciBars as parseLspciBars } from '../server/src/runtime/guest-view';
import { REPO } from './support/cli';

const DIR = join(REPO, 'test', 'layout', 'configs');
const configs = readdirSync(DIR).filter((f) => f.endsWith('.qemu')).sort();
const hx = (v: bigint) => v.toString(16);

test('at least 25 recorded configurations', () => {
  assert.ok(configs.filter((f) => existsSync(join(DIR, f.replace(/\.qemu$/, '.guest.json')))).length >= 25);
});

for (const f of configs) {
  const recFile = join(DIR, f.replace(/\.qemu$/, '.guest.json'));
  test(`layout ${f} equals what the guest shows`, { skip: !existsSync(recFile) && 'not recorded' }, async () => {
    const rec = JSON.parse(readFileSync(recFile, 'utf8'));
    let text = readFileSync(join(DIR, f), 'utf8');
    const app = /^# append: (.*)$/m.exec(text);
    if (app) text = `${text.trimEnd()} \\\n  -append '${app[1]}'\n`;
    const r = analyzeDocument(text, join(DIR, f));
    // These configurations boot; the only error allowed is a silent failure the guest itself shows.
    const silent = ['cxl-bar-overlap', 'bar-beyond-phys-bits'];
    assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error' && !silent.includes(d.code)).map((d) => d.message), []);
    const L = computeLayout(r.nodes[0], { agent: true });
    assert.equal(L.qemuVersion, '7.2.22');
    assert.equal(L.firmware, '1.16.2');

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
    // bar-beyond-phys-bits is reported exactly when the guest kernel could not keep a BAR where the firmware put it above 4 GiB.
    const limit = 1n << BigInt(L.platform.physBits);
    const dropped = [...(rec.dmesg as string).matchAll(/BAR \d+ \[mem 0x([0-9a-f]+)-0x[0-9a-f]+[^\]]*\]: can't claim/g)].some((m) => BigInt('0x' + m[1]) >= limit);
    assert.equal(r.diagnostics.some((d) => d.code === 'bar-beyond-phys-bits'), dropped, 'bar-beyond-phys-bits against the guest');
  });
}
