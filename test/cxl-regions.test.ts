/**
 * Regions asked for in a topology (<window region="ram|pmem" dax="…">): the
 * plan the engine works out (devices below the window's host bridges, ways,
 * size, the guest's root decoder) and the rules cxl-region-devices,
 * cxl-region-size and cxl-region-dax, with exact ranges (marked ⟦…⟧), judged
 * for QEMU 10.0 (volatile Type 3 capacity needs QEMU 8.1 or later).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeDocument } from '../server/src/engine/index';
import { BUNDLED } from '../server/src/engine/qemu/profile';
import { regionPlans } from '../server/src/engine/model/cxl-regions';
import { marked } from './support/marked';

const SOURCE = '/work/x/r.cluster.xml';
const QEMU10 = BUNDLED.find((p) => p.arch === 'x86_64' && p.version.startsWith('10.0'))!;
const analyze = (text: string) => analyzeDocument(text, SOURCE, undefined, undefined, { qemu: QEMU10 });

const node = (cxl: string) => `<cluster name="r">
  <node name="n" machine="q35" memory="1G" maxmem="2G" slots="1" cpus="2">
    <cxl>
${cxl}
    </cxl>
  </node>
</cluster>
`;
const TWO_HB = (k0: string, k1: string) => `      <host-bridge id="cxl.1" bus-nr="12"><root-port id="rp0" port="0" chassis="0" slot="2"><type3 id="mem0" size="256M"${k0} sn="0x10"/></root-port></host-bridge>
      <host-bridge id="cxl.2" bus-nr="222"><root-port id="rp1" port="0" chassis="0" slot="3"><type3 id="mem1" size="256M"${k1} sn="0x11"/></root-port></host-bridge>`;

function check(src: string, code: string) {
  const { text, spans } = marked(src);
  const all = analyze(text).diagnostics;
  const show = all.map((d) => `${d.code} «${text.slice(d.span.start, d.span.end)}»: ${d.message}`).join('\n');
  const got = all.filter((d) => d.code === code).sort((a, b) => a.span.start - b.span.start);
  assert.deepEqual(got.map((d) => ({ start: d.span.start, end: d.span.end })), spans, show);
  return { text, got, all };
}

test('an interleaved ram region over two host bridges: its plan, and no finding', () => {
  const text = node(`${TWO_HB(' kind="volatile"', ' kind="volatile"')}
      <window size="4G" targets="cxl.1 cxl.2" granularity="8k" region="ram" dax="system-ram"/>`);
  const r = analyze(text);
  assert.deepEqual(r.diagnostics.map((d) => `${d.code}: ${d.message}`), []);
  const [plan] = regionPlans(r.nodes[0]);
  assert.equal(plan.decoder, 'decoder0.0');
  assert.deepEqual(plan.targets, ['cxl.1', 'cxl.2']);
  assert.deepEqual(plan.devices.map((d) => [d.id, d.hostBridge, d.kind, d.size, d.serial]), [['mem0', 'cxl.1', 'volatile', 256n << 20n, 0x10n], ['mem1', 'cxl.2', 'volatile', 256n << 20n, 0x11n]]);
  assert.equal(plan.size, 512n << 20n);
  assert.equal(plan.granularity, 8192n);
  assert.equal(plan.dax, 'system-ram');
  // the volatile devices are volatile-memdev= without label storage
  const argv = r.nodes[0].args.map((a) => a.value?.text ?? '').join(' ');
  assert.match(argv, /cxl-type3,bus=rp0,volatile-memdev=mem0-mem,id=mem0,sn=0x10/);
  assert.doesNotMatch(argv, /mem0-lsa/);
});

test('cxl-region-devices: the kind of each device, a host bridge without a device, no device at all; the fix flips the region type', () => {
  const { text, got } = check(node(`${TWO_HB(' kind="volatile"', '')}
      <window size="4G" targets="cxl.1 cxl.2" region="⟦ram⟧"/>`), 'cxl-region-devices');
  assert.match(got[0].message, /region="ram" needs volatile capacity, but the Type 3 device 'mem1' below cxl\.2 is persistent \(memdev=\)/);
  // related: the window element, and the persistent device (its <type3> element)
  assert.deepEqual(got[0].related!.map((x) => text.slice(x.span.start, x.span.end)), ['window', 'type3']);
  assert.equal(got[0].fixes![0].edits[0].newText, 'pmem');
  check(node(`${TWO_HB('', '')}
      <host-bridge id="cxl.3" bus-nr="100"/>
      <window size="4G" targets="cxl.2 cxl.3" region="⟦pmem⟧"/>
      <window size="4G" targets="cxl.3" region="⟦pmem⟧"/>`), 'cxl-region-devices');
});

test('cxl-region-size: ways x capacity beyond the window, with the numbers', () => {
  const { got } = check(node(`${TWO_HB('', '')}
      <window size="256M" targets="cxl.1 cxl.2" region="⟦pmem⟧"/>`), 'cxl-region-size');
  assert.match(got[0].message, /needs 0x20000000 \(512 MiB\) \(2 ways × 0x10000000 \(256 MiB\)\), more than the window's 0x10000000 \(256 MiB\)/);
});

test('cxl-region-dax: fsdax on a ram region, at the dax value, with two fixes', () => {
  const { got } = check(node(`${TWO_HB(' kind="volatile"', ' kind="volatile"')}
      <window size="4G" targets="cxl.1 cxl.2" region="ram" dax="⟦fsdax⟧"/>`), 'cxl-region-dax');
  assert.deepEqual(got[0].fixes!.map((f) => f.edits[0].newText), ['system-ram', 'devdax']);
});

test('a node that asks for a region runs without the hypervisor CPUID bit; a -cpu of the user\'s that keeps it is cxl-region-hypervisor on the 6.12 guest', () => {
  const volatile = TWO_HB(' kind="volatile"', ' kind="volatile"');
  const r = analyze(node(`${volatile}
      <window size="4G" targets="cxl.1 cxl.2" region="ram"/>`));
  assert.deepEqual(r.nodes[0].args.filter((a) => a.name === 'cpu').map((a) => a.value!.text), ['qemu64,-hypervisor']);
  const withCpu = (cpu: string) => node(`${volatile}
      <window size="4G" targets="cxl.1 cxl.2" region="ram"/>`).replace('<cxl>', `<qemu>-cpu ${cpu}</qemu>\n    <cxl>`);
  const { got } = check(withCpu('⟦max⟧'), 'cxl-region-hypervisor');
  assert.match(got[0].message, /CPU model 'max' shows the guest the hypervisor CPUID bit, so the 6\.12 guest cannot commit the region asked for on CXL window 0 \("Failed to synchronize CPU cache state".*Add -hypervisor: max,-hypervisor$/);
  check(withCpu('max,-hypervisor'), 'cxl-region-hypervisor');
  check(withCpu('max,hypervisor=off'), 'cxl-region-hypervisor');
  // the 6.1 guest does not check: no finding
  const six1 = withCpu('max').replace('<cluster name="r">', '<cluster name="r">\n  <guest kernel-version="6.1"/>');
  assert.deepEqual(analyze(six1).diagnostics.filter((d) => d.code === 'cxl-region-hypervisor'), []);
});

test('cxl-region-guest-tools: a ram region on the 6.1 guest (chosen, or the default under QEMU 7.2)', () => {
  const src = (guest: string) => `<cluster name="r">
  ${guest}
  <node name="n" machine="q35" memory="1G" maxmem="2G" slots="1" cpus="2">
    <cxl>
${TWO_HB(' kind="volatile"', ' kind="volatile"')}
      <window size="4G" targets="cxl.1 cxl.2" region="⟦ram⟧"/>
    </cxl>
  </node>
</cluster>
`;
  const { got } = check(src('<guest kernel-version="6.1"/>'), 'cxl-region-guest-tools');
  assert.match(got[0].message, /the node boots the 6\.1 guest \(<guest kernel-version="6\.1">\), whose cxl \(ndctl 76\.1\) answers "region type 'ram' not supported yet"/);
  // the 6.12 guest, chosen or by default under QEMU 10.0: fine
  assert.deepEqual(analyze(marked(src('<guest kernel-version="6.12"/>')).text).diagnostics.filter((d) => d.code === 'cxl-region-guest-tools'), []);
  assert.deepEqual(analyze(marked(src('')).text).diagnostics.filter((d) => d.code === 'cxl-region-guest-tools'), []);
  // under QEMU 7.2 the default guest is 6.1
  const seven = analyzeDocument(marked(src('')).text, SOURCE).diagnostics.filter((d) => d.code === 'cxl-region-guest-tools');
  assert.equal(seven.length, 1);
  assert.match(seven[0].message, /the default under QEMU 7\.2/);
  // a kernel of the user's: memfabric does not know its tools
  assert.deepEqual(analyzeDocument(marked(src('<guest kernel="/k" initrd="/i"/>')).text, SOURCE).diagnostics.filter((d) => d.code === 'cxl-region-guest-tools'), []);
});

test('<type3 dc-size dc-regions dc-path>: dynamic capacity as QEMU 9.1 takes it, alone or beside static capacity; its rules at the attributes; QEMU 7.2 is told the version', () => {
  const dc = (attrs: string) => node(`      <host-bridge id="cxl.1" bus-nr="12"><root-port id="rp0" port="0" chassis="0" slot="2"><type3 id="dcd0" ${attrs} sn="0x7"/></root-port></host-bridge>
      <window size="4G" targets="cxl.1"/>`);
  const r = analyze(dc('dc-size="512M" dc-regions="2"'));
  assert.deepEqual(r.diagnostics.map((d) => `${d.code}: ${d.message}`), []);
  const argv = r.nodes[0].args.map((a) => a.value?.text ?? '');
  assert.ok(argv.includes('memory-backend-ram,id=dcd0-dc,size=512M'), argv.join(' '));
  assert.ok(argv.includes('cxl-type3,bus=rp0,volatile-dc-memdev=dcd0-dc,num-dc-regions=2,id=dcd0,sn=0x7'), argv.join(' '));
  const mixed = analyze(dc('size="256M" kind="volatile" dc-size="512M" dc-path="/srv/dc.raw"')).nodes[0].args.map((a) => a.value?.text ?? '');
  assert.ok(mixed.includes('memory-backend-file,id=dcd0-dc,share=on,mem-path=/srv/dc.raw,size=512M'), mixed.join(' '));
  assert.ok(mixed.includes('cxl-type3,bus=rp0,volatile-memdev=dcd0-mem,volatile-dc-memdev=dcd0-dc,num-dc-regions=1,id=dcd0,sn=0x7'), mixed.join(' '));
  // QEMU's own split rule, at the dc-size value
  const { got } = check(dc('dc-size="⟦384M⟧" dc-regions="2"'), 'cxl-dc-region-size');
  assert.match(got[0].message, /must be a multiple of 2 × 256 MiB = 0x20000000 \(512 MiB\).*QEMU: "backend size is not multiple of region len: 0xc000000"/);
  // QEMU 7.2: the properties it lacks, with the release that has them
  const old = analyzeDocument(marked(dc('dc-size="512M" dc-regions="2"')).text, SOURCE).diagnostics.filter((d) => d.code === 'unknown-property').map((d) => d.message);
  assert.ok(old.some((m) => /'volatile-dc-memdev' \(it arrived in QEMU 9\.1; this is QEMU 7\.2\.\d+\)/.test(m)), old.join('\n'));
  assert.ok(old.some((m) => /'num-dc-regions' \(it arrived in QEMU 9\.1/.test(m)), old.join('\n'));
});

test('completion offers what the QEMU judged for has: kind, dc-* and region="ram" under 10.0, not under 7.2', async () => {
  const { complete } = await import('../server/src/engine/editor/completion');
  const QEMU72 = BUNDLED.find((p) => p.arch === 'x86_64' && p.version.startsWith('7.2'))!;
  const t3 = '<cluster name="c"><node name="n" machine="q35" memory="1G"><cxl><host-bridge id="cxl.1"><root-port><type3 id="m" size="256M" ';
  const attrs = (q: typeof QEMU10) => complete(t3, t3.length, 'topology', undefined, q).map((c) => c.label);
  for (const a of ['kind', 'dc-size', 'dc-regions', 'dc-path']) {
    assert.ok(attrs(QEMU10).includes(a), a);
    assert.ok(!attrs(QEMU72).includes(a), a);
  }
  assert.ok(attrs(QEMU72).includes('lsa-path'));
  const win = '<cluster name="c"><node name="n" machine="q35" memory="1G"><cxl><window size="4G" targets="cxl.1" region="';
  assert.deepEqual(complete(win, win.length, 'topology', undefined, QEMU10).map((c) => c.label), ['ram', 'pmem']);
  assert.deepEqual(complete(win, win.length, 'topology', undefined, QEMU72).map((c) => c.label), ['pmem']);
});
