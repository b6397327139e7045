/**
 * libvirt 9.0's own validation of memory, NUMA, hugepages, numatune and memory
 * devices (rules/libvirt-numa-cell*.ts, libvirt-hugepages.ts,
 * libvirt-memory-device.ts, libvirt-memory-hotplug.ts, libvirt-memory-address.ts):
 * per fixture of test/fixtures/libvirt, the code, the exact text the range
 * covers, and libvirt's words in the message. That libvirt 9.0 itself refuses
 * (or takes) each fixture is checked by test/libvirt.test.ts against virsh.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeDocument, NO_HOST } from '../server/src/engine/index';
import { REPO } from './support/cli';

const FIXTURES = join(REPO, 'test', 'fixtures', 'libvirt');

function analyze(f: string, text = readFileSync(join(FIXTURES, f), 'utf8')) {
  return { text, r: analyzeDocument(text, join(FIXTURES, f), NO_HOST) };
}

/** [fixture, code, text under the range, libvirt's (or QEMU's) words, text under the first related range] */
const CASES: [string, string, string, string, string?][] = [
  ['numa-hugepages-nodeset.xml', 'libvirt-numa-cell-ref', '1', 'hugepages: node 1 not found'],
  ['numa-distance-sibling.xml', 'libvirt-numa-cell-ref', '2', "'sibling_id 2' does not refer to a valid cell within NUMA 'cell id 0'"],
  ['numatune-memnode-cellid.xml', 'libvirt-numa-cell-ref', '1', "Argument 'cellid' in memnode element must correspond to existing guest's NUMA cell"],
  ['numatune-memnode-no-cells.xml', 'libvirt-numa-cell-ref', '0', "Element 'memnode' is invalid without any guest NUMA cells"],
  ['numatune-memnode-twice.xml', 'libvirt-numa-cell-ref', '0', 'Multiple memnode elements with cellid 0', '0'],
  ['memory-target-node.xml', 'libvirt-numa-cell-ref', '1', "can't add memory backend for guest node '1' as the guest has only '1' NUMA nodes configured"],
  ['numa-memaccess-invalid.xml', 'libvirt-numa-cell', 'Shared', "Invalid value for attribute 'memAccess' in element 'cell': 'Shared'."],
  ['numa-cell-id-gap.xml', 'libvirt-numa-cell', '2', "Exactly one 'cell' element per guest NUMA cell allowed, non-contiguous ranges or ranges not starting from 0 are not allowed"],
  ['numa-cpus-overlap.xml', 'libvirt-numa-cell', '1', 'NUMA cells 1 and 0 have overlapping vCPU ids', '0-1'],
  ['numa-distance-value.xml', 'libvirt-numa-cell', '20', "'value 20' is invalid for 'sibling id 0' under NUMA 'cell id 0'"],
  ['hugepages-two-default.xml', 'libvirt-hugepages', '1', 'two master hugepages detected: 1048576 and 2048', '2048'],
  ['hugepages-ondemand.xml', 'libvirt-hugepages', 'ondemand', 'hugepages are not allowed with memory allocation ondemand'],
  ['virtio-mem-requested.xml', 'libvirt-memory-device', '513', 'requested size must be an integer multiple of block size', '2'],
  ['virtio-mem-block-small.xml', 'libvirt-memory-device', '1', 'block size too small, must be at least 2048KiB'],
  ['virtio-pmem-private.xml', 'libvirt-memory-device', 'private', 'shared access mode required for virtio-pmem device'],
  ['dimm-no-node.xml', 'libvirt-memory-device', 'dimm', 'target NUMA node needs to be specified for memory device'],
  ['dimm-no-maxmem.xml', 'libvirt-memory-hotplug', 'dimm', "cannot use/hotplug a memory device when domain 'maxMemory' is not defined"],
  ['dimm-slots-count.xml', 'libvirt-memory-hotplug', 'dimm', 'failed to find an empty memory slot', '1'],
  ['dimm-base-twice.xml', 'libvirt-memory-address', '0x100000000', "memory device base '0x100000000' is already being used by another memory device", '0x100000000'],
  ['hugepages-nodeset-intersect.xml', 'libvirt-hugepages', '1', 'nodeset attribute of hugepages of sizes 1048576 and 2048 intersect', '0-1'],
  ['hugepages-anonymous.xml', 'libvirt-hugepages', 'anonymous', 'hugepages are not allowed with anonymous memory source'],
  ['nvdimm-no-path.xml', 'libvirt-memory-device', 'nvdimm', "path is required for model 'nvdimm'"],
  ['virtio-mem-requested-size.xml', 'libvirt-memory-device', '2048', 'requested size must be smaller than or equal to @size (1048576KiB)', '1'],
  ['maxmem-no-slots.xml', 'libvirt-memory-hotplug', 'maxMemory', 'both maximum memory size and memory slot count must be specified'],
  ['dimm-slot-twice.xml', 'libvirt-memory-address', '0', "memory device slot '0' is already being used by another memory device", '0'],
  ['numa-distances-empty.xml', 'libvirt-numa-cell', 'distances', 'NUMA distances defined without siblings'],
  ['dimm-address-overlap.xml', 'libvirt-memory-address', '0x120000000', "address range conflicts with memory device id='dimm0'", '0x100000000'],
];

for (const [f, code, under, words, rel] of CASES) {
  test(`${f}: ${code} on '${under}' quotes "${words.slice(0, 40)}…"`, () => {
    const { text, r } = analyze(f);
    const ds = r.diagnostics.filter((d) => d.code === code);
    assert.equal(ds.length, 1, `${f}: ${r.diagnostics.map((d) => `${d.code}: ${d.message}`).join('\n')}`);
    const d = ds[0];
    assert.equal(d.severity, 'error');
    assert.equal(text.slice(d.span.start, d.span.end), under);
    assert.ok(d.message.includes(`"${words}`) || d.message.includes(`: ${words}"`), d.message);
    if (rel !== undefined) assert.equal(text.slice(d.related![0].span.start, d.related![0].span.end), rel);
  });
}

test('the near misses libvirt 9.0 takes check clean', () => {
  for (const f of ['numa-distances-ok.xml', 'dimm-address-ok.xml', 'nvdimm-pc-acpi.xml', 'maxmem-numa.xml']) {
    assert.deepEqual(analyze(f).r.diagnostics.map((d) => `${d.code}: ${d.message}`), [], f);
  }
});

/** A hotplug domain: one 2 GiB cell and memory devices of the given models and sizes (GiB), <memory> = `memory` GiB. */
function hotplug(memory: number, devices: [string, number][]): string {
  const dev = ([model, gib]: [string, number]) =>
    model === 'virtio-mem'
      ? `<memory model='virtio-mem'><target><size unit='GiB'>${gib}</size><node>0</node><block unit='MiB'>2</block><requested unit='MiB'>512</requested></target></memory>`
      : model === 'virtio-pmem'
        ? `<memory model='virtio-pmem'><source><path>/tmp/pmem</path></source><target><size unit='GiB'>${gib}</size></target></memory>`
        : `<memory model='${model}'>${model === 'nvdimm' ? '<source><path>/tmp/nv</path></source>' : ''}<target><size unit='GiB'>${gib}</size><node>0</node></target></memory>`;
  return `<domain type='qemu'>
  <name>hotplug</name>
  <maxMemory slots='8' unit='GiB'>32</maxMemory>
  <memory unit='GiB'>${memory}</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <cpu><numa><cell id='0' cpus='0-1' memory='2' unit='GiB'/></numa></cpu>
  <devices>${devices.map(dev).join('')}</devices>
</domain>
`;
}

test('libvirt-numa-memory: <memory> = cells + every memory device (dimm, nvdimm, virtio-mem, virtio-pmem) is what libvirt 9.0 keeps', () => {
  const devs: [string, number][] = [['dimm', 1], ['nvdimm', 1], ['virtio-mem', 4], ['virtio-pmem', 1]];
  const codes = (t: string) => analyze('hotplug.xml', t).r.diagnostics.filter((d) => d.code.startsWith('libvirt-')).map((d) => d.code);
  assert.deepEqual(codes(hotplug(2 + 1 + 1 + 4 + 1, devs)), []);
  for (const [m, g] of devs) assert.deepEqual(codes(hotplug(2 + g, [[m, g]])), [], m);
  // <memory> of the cells alone is the initial memory: libvirt adds the devices, and so do we.
  assert.deepEqual(codes(hotplug(2, devs)), []);
  // Anything else: libvirt replaces it with cells + devices, and the fix says so.
  const text = hotplug(5, devs);
  const { r } = analyze('hotplug.xml', text);
  const d = r.diagnostics.find((x) => x.code === 'libvirt-numa-memory')!;
  assert.ok(d, r.diagnostics.map((x) => x.code).join(','));
  assert.match(d.message, /cells \+ devices, 9437184 KiB/);
  assert.equal(d.related!.length, 5);
  const fixed = text.slice(0, d.fixes![0].edits[0].span.start) + d.fixes![0].edits[0].newText + text.slice(d.fixes![0].edits[0].span.end);
  assert.match(fixed, /<memory unit='GiB'>9<\/memory>/);
  assert.deepEqual(codes(fixed), []);
});

test('libvirt-memory-hotplug: virtio-mem and virtio-pmem take slots too (libvirt 9.0 counts every memory device)', () => {
  const t = hotplug(2 + 1 + 1, [['virtio-mem', 1], ['virtio-pmem', 1]]).replace("slots='8'", "slots='1'");
  const d = analyze('hotplug.xml', t).r.diagnostics.find((x) => x.code === 'libvirt-memory-hotplug')!;
  assert.ok(d);
  assert.ok(d.message.includes("memory device count '2' exceeds slots count '1'"), d.message);
});

test('libvirt-memory-device: virtio-mem <requested> above <size>, <block> not a power of two', () => {
  const base = hotplug(3, [['virtio-mem', 1]]);
  const req = analyze('x.xml', base.replace("<requested unit='MiB'>512", "<requested unit='MiB'>2048")).r.diagnostics.find((x) => x.code === 'libvirt-memory-device')!;
  assert.ok(req.message.includes('requested size must be smaller than or equal to @size (1048576KiB)'), req.message);
  const blk = analyze('x.xml', base.replace("<block unit='MiB'>2", "<block unit='MiB'>3")).r.diagnostics.find((x) => x.code === 'libvirt-memory-device')!;
  assert.ok(blk.message.includes('"block size must be a power of two"'), blk.message);
});

test('libvirt-memory-hotplug: <maxMemory> below cells + devices', () => {
  const t = hotplug(3, [['dimm', 1]]).replace("<maxMemory slots='8' unit='GiB'>32", "<maxMemory slots='8' unit='GiB'>2");
  const { text, r } = analyze('x.xml', t);
  const d = r.diagnostics.find((x) => x.code === 'libvirt-memory-hotplug')!;
  assert.equal(text.slice(d.span.start, d.span.end), '2');
  assert.ok(d.message.includes('"XML error: maximum memory size must be equal or greater than the actual memory size"'), d.message);
});

test('virtio-mem and virtio-pmem are modelled as libvirt 9.0 passes them (aliases by model, reserve=off, share=on)', () => {
  // (Not a fixture of test/fixtures/libvirt yet: readers/libvirt-slots.ts does not give virtio-mem-pci and
  // virtio-pmem-pci their root-bus slots; libvirt 9.0 takes this domain, -device virtio-mem-pci at pci.0 0x3.)
  const { r } = analyze('x.xml', hotplug(4, [['virtio-mem', 1], ['virtio-pmem', 1]]));
  assert.deepEqual(r.diagnostics.map((d) => `${d.code}: ${d.message}`), []);
  const n = r.nodes[0];
  const devs = n.devices.map((d) => d.driver).filter((x) => x.startsWith('virtio-'));
  assert.deepEqual(devs.sort(), ['virtio-mem-pci', 'virtio-pmem-pci']);
  assert.ok(n.backends.get('memvirtiomem0') && n.backends.get('memvirtiopmem0'), [...n.backends.keys()].join(','));
});
