/**
 * The second set of QEMU rules (memory devices, NUMA, backends, machine):
 * messages carry the numbers, ranges cover exactly the offending characters,
 * and the quick fixes produce a configuration the rules accept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeDocument, Diagnostic } from '../server/src/engine/index';
import { FileInfo, HostProbe } from '../server/src/engine/rules/rule';
import { marked } from './support/marked';

const SOURCE = '/work/x/node.qemu';

/** Analyze a command line whose expected ranges are marked ⟦…⟧; return the diagnostics of `code`. */
function check(src: string, code: string) {
  const { text, spans } = marked(src);
  const all = analyzeDocument(text, SOURCE).diagnostics;
  const show = all.map((d) => `${d.code} «${text.slice(d.span.start, d.span.end)}»: ${d.message}`).join('\n');
  const got = all.filter((d) => d.code === code).sort((a, b) => a.span.start - b.span.start);
  assert.deepEqual(got.map((d) => ({ start: d.span.start, end: d.span.end })), spans, show);
  return { text, got, all };
}

/** Apply a diagnostic's fix (by index) to the text. */
function applyFix(text: string, d: Diagnostic, i = 0): string {
  const edits = [...d.fixes![i].edits].sort((a, b) => b.span.start - a.span.start);
  let out = text;
  for (const e of edits) out = out.slice(0, e.span.start) + e.newText + out.slice(e.span.end);
  return out;
}

function clean(text: string) {
  const ds = analyzeDocument(text, SOURCE).diagnostics;
  assert.deepEqual(ds.map((d) => `${d.code}: ${d.message}`), []);
}

test('memory-device-space: on the memdev of the device that does not fit, with QEMU\'s numbers; the fix raises maxmem', () => {
  const { text, got } = check(
    `qemu-system-x86_64 -M q35 -m 1G,maxmem=2G,slots=4 \\
  -object memory-backend-ram,id=dimm0,size=768M \\
  -object memory-backend-ram,id=dimm1,size=512M \\
  -device pc-dimm,id=d0,memdev=dimm0 \\
  -device pc-dimm,id=d1,memdev=⟦dimm1⟧
`,
    'memory-device-space',
  );
  const d = got[0];
  assert.equal(text.slice(d.span.start, d.span.end), 'dimm1');
  assert.match(d.message, /0x30000000 \(768 MiB\)/);
  assert.match(d.message, /0x40000000 \(1 GiB\)/);
  assert.match(d.message, /0x20000000 \(512 MiB\)/);
  assert.match(d.message, /QEMU: "not enough space, currently 0x30000000 in use of total space for memory devices 0x40000000"/);
  const fixed = applyFix(text, d);
  assert.match(fixed, /-m 1G,maxmem=2304M,slots=4/);
  clean(fixed);
});

test('memory-device-needs-maxmem: on the driver name; pc-dimm quotes the slots error; the fix adds maxmem and slots', () => {
  const { text, got } = check(
    `qemu-system-x86_64 -M q35 -m 1G \\
  -object memory-backend-ram,id=dimm0,size=512M \\
  -device ⟦pc-dimm⟧,id=d0,memdev=dimm0
`,
    'memory-device-needs-maxmem',
  );
  const d = got[0];
  assert.match(d.message, /RAM 0x40000000 \(1 GiB\)/);
  assert.match(d.message, /0x20000000 \(512 MiB\)/);
  assert.match(d.message, /QEMU: "no slots where allocated, please specify the 'slots' option"/);
  const fixed = applyFix(text, d);
  assert.match(fixed, /-m 1G,maxmem=1536M,slots=1 /);
  clean(fixed);
});

test('memory-device-needs-maxmem: virtio-mem-pci quotes the maxmem error', () => {
  const { got } = check(
    `qemu-system-x86_64 -M q35 -m 1G,maxmem=1G \\
  -object memory-backend-ram,id=vmem0,size=512M \\
  -device ⟦virtio-mem-pci⟧,memdev=vmem0,bus=pcie.0
`,
    'memory-device-needs-maxmem',
  );
  assert.match(got[0].message, /maxmem 0x40000000 \(1 GiB\) equals the RAM size/);
  assert.match(got[0].message, /QEMU: "memory devices \(e\.g\. for memory hotplug\) are not enabled, please specify the maxmem option"/);
});

test('memory-device-slots-full: the DIMM without a free slot, and an explicit slot out of range', () => {
  const { text, got } = check(
    `qemu-system-x86_64 -M q35 -m 1G,maxmem=4G,slots=1 \\
  -object memory-backend-ram,id=a,size=512M \\
  -object memory-backend-ram,id=b,size=512M \\
  -object memory-backend-ram,id=c,size=512M \\
  -device pc-dimm,memdev=a \\
  -device ⟦pc-dimm⟧,memdev=b \\
  -device pc-dimm,memdev=c,slot=⟦5⟧
`,
    'memory-device-slots-full',
  );
  assert.match(got[0].message, /QEMU: "no free slots available"/);
  assert.match(got[1].message, /QEMU: "invalid slot number 5, valid range is \[0-0\]"/);
  assert.match(applyFix(text, got[0]), /slots=3/);
});

test('nvdimm-label-size: on the value, hex and human numbers; the fix sets 128K', () => {
  const { text, got } = check(
    `qemu-system-x86_64 -M q35,nvdimm=on -m 1G,maxmem=4G,slots=2 \\
  -object memory-backend-file,id=nv0,mem-path=/srv/nv0.raw,size=512M,share=on \\
  -device nvdimm,id=nvd0,memdev=nv0,label-size=⟦64K⟧
`,
    'nvdimm-label-size',
  );
  const d = got[0];
  assert.match(d.message, /0x10000 \(64 KiB\)/);
  assert.match(d.message, /0x20000 \(128 KiB\)/);
  assert.match(d.message, /QEMU: "Property 'nvdimm\.label-size' \(0x10000\) is required at least 0x20000"/);
  clean(applyFix(text, d));
});

test('nvdimm-needs-nvdimm-on: on the driver name; the fix adds nvdimm=on to the machine', () => {
  const { text, got } = check(
    `qemu-system-x86_64 -M q35 -m 1G,maxmem=4G,slots=2 \\
  -object memory-backend-file,id=nv0,mem-path=/srv/nv0.raw,size=512M,share=on \\
  -device ⟦nvdimm⟧,id=nvd0,memdev=nv0
`,
    'nvdimm-needs-nvdimm-on',
  );
  const fixed = applyFix(text, got[0]);
  assert.match(fixed, /-M q35,nvdimm=on /);
  clean(fixed);
});

test('memory-device-node: on the node value', () => {
  const { got } = check(
    `qemu-system-x86_64 -M q35 -m 1G,maxmem=4G,slots=2 \\
  -object memory-backend-ram,id=dimm0,size=512M \\
  -device pc-dimm,memdev=dimm0,node=⟦1⟧
`,
    'memory-device-node',
  );
  assert.match(got[0].message, /QEMU: "'DIMM property node has value 1' which exceeds the number of numa nodes: 1"/);
});

test('max-ram-below-4g: on the value; hex, human and QEMU\'s decimal bytes', () => {
  const { text, got } = check(`qemu-system-x86_64 -M q35,max-ram-below-4g=⟦8G⟧ -m 1G\n`, 'max-ram-below-4g');
  assert.match(got[0].message, /0x200000000 \(8 GiB\)/);
  assert.match(got[0].message, /QEMU: "Machine option 'max-ram-below-4g=8589934592' expects size less than or equal to 4G"/);
  clean(applyFix(text, got[0]));
});

test('machine-memory-backend: size mismatch on the backend size, with both sizes; both fixes are accepted', () => {
  const { text, got } = check(
    `qemu-system-x86_64 -M q35,memory-backend=ram -m 2G \\
  -object memory-backend-ram,id=ram,size=⟦1G⟧
`,
    'machine-memory-backend',
  );
  assert.match(got[0].message, /0x40000000 \(1 GiB\)/);
  assert.match(got[0].message, /0x80000000 \(2 GiB\)/);
  clean(applyFix(text, got[0], 0));
  clean(applyFix(text, got[0], 1));
});

test('machine-memory-backend: with -numa memdev, on the memory-backend value', () => {
  check(
    `qemu-system-x86_64 -M q35,memory-backend=⟦ram⟧ -m 2G -smp 2 \\
  -object memory-backend-ram,id=ram,size=2G \\
  -object memory-backend-ram,id=m0,size=1G \\
  -object memory-backend-ram,id=m1,size=1G \\
  -numa node,nodeid=0,cpus=0,memdev=m0 \\
  -numa node,nodeid=1,cpus=1,memdev=m1
`,
    'machine-memory-backend',
  );
});

test('numa-legacy-mem and numa-mem-memdev-mix: on the mem/memdev keys', () => {
  const src = `qemu-system-x86_64 -M q35 -m 2G -smp 2 \\
  -object memory-backend-ram,id=m0,size=1G \\
  -numa node,nodeid=0,cpus=0,memdev=m0 \\
  -numa node,nodeid=1,cpus=1,⟦mem⟧=1G
`;
  check(src, 'numa-legacy-mem');
  check(src, 'numa-mem-memdev-mix');
  const old = check(`qemu-system-x86_64 -M pc-i440fx-5.0 -m 1G -numa node,nodeid=0,⟦mem⟧=1G\n`, 'numa-legacy-mem');
  assert.equal(old.got[0].severity, 'warning');
});

test('backend rules: prealloc/reserve, host-nodes/policy and pmem/share ranges and fixes', () => {
  const pr = check(`qemu-system-x86_64 -M q35 -m 1G -object memory-backend-ram,id=b0,size=64M,prealloc=on,reserve=⟦off⟧\n`, 'backend-prealloc-reserve');
  clean(applyFix(pr.text, pr.got[0], 0));
  clean(applyFix(pr.text, pr.got[0], 1));
  const hn = check(`qemu-system-x86_64 -M q35 -m 1G -object memory-backend-ram,id=b0,size=64M,host-nodes=⟦0⟧\n`, 'backend-host-nodes-policy');
  clean(applyFix(hn.text, hn.got[0]));
  check(`qemu-system-x86_64 -M q35 -m 1G -object memory-backend-ram,id=b0,size=64M,policy=⟦interleave⟧\n`, 'backend-host-nodes-policy');
  const pm = check(`qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=p,mem-path=/srv/p.raw,size=64M,pmem=⟦on⟧\n`, 'pmem-without-share');
  assert.match(applyFix(pm.text, pm.got[0]), /pmem=on,share=on/);
  check(`qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=p,mem-path=/srv/p.raw,size=64M,share=⟦off⟧,pmem=on\n`, 'pmem-without-share');
});

test('ivshmem-doorbell-no-chardev: on the driver name', () => {
  check(`qemu-system-x86_64 -M q35 -m 1G -device ⟦ivshmem-doorbell⟧,bus=pcie.0\n`, 'ivshmem-doorbell-no-chardev');
  const ok = analyzeDocument(`qemu-system-x86_64 -M q35 -m 1G -chardev socket,path=/tmp/ivs,id=ivs -device ivshmem-doorbell,chardev=ivs,bus=pcie.0\n`, SOURCE);
  assert.deepEqual(ok.diagnostics.filter((d) => d.code === 'ivshmem-doorbell-no-chardev'), []);
});

test('cxl-fmw-split: on the keys of each later -machine option with cxl-fmw, related to the first; the fix moves them into the first option', () => {
  const { text, got } = check(
    `qemu-system-x86_64 -M q35,cxl=on -m 1G,maxmem=4G,slots=4 \\
  -object memory-backend-file,id=cxl-mem1,share=on,mem-path=/tmp/cxl.raw,size=256M \\
  -object memory-backend-file,id=cxl-lsa1,share=on,mem-path=/tmp/lsa.raw,size=256M \\
  -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \\
  -device cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2 \\
  -device cxl-type3,bus=rp0,memdev=cxl-mem1,lsa=cxl-lsa1,id=t3 \\
  -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G \\
  -M ⟦cxl-fmw.1.targets.0=cxl.1,cxl-fmw.1.size=4G⟧
`,
    'cxl-fmw-split',
  );
  const d = got[0];
  assert.match(d.message, /Parameters 'cxl-fmw\.\*' used inconsistently/);
  assert.equal(text.slice(d.related![0].span.start, d.related![0].span.end), 'cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G');
  const fixed = applyFix(text, d);
  assert.ok(fixed.endsWith('  -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G,cxl-fmw.1.targets.0=cxl.1,cxl-fmw.1.size=4G\n'), fixed);
  assert.deepEqual(analyzeDocument(fixed, SOURCE).diagnostics.filter((x) => x.code === 'cxl-fmw-split'), []);
});

test('cxl-fmw-split: no fix when the later option is quoted or also sets other machine properties', () => {
  for (const later of [`'cxl-fmw.1.targets.0=cxl.1,cxl-fmw.1.size=4G'`, `q35,cxl-fmw.1.targets.0=cxl.1,cxl-fmw.1.size=4G`]) {
    const text = `qemu-system-x86_64 -M q35,cxl=on -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G -M ${later}\n`;
    const d = analyzeDocument(text, SOURCE).diagnostics.filter((x) => x.code === 'cxl-fmw-split');
    assert.equal(d.length, 1, later);
    assert.deepEqual(d[0].fixes ?? [], [], later);
  }
});

test('cxl-fmw-split: the fix when other options stand between the two -machine options', () => {
  const { text, got } = check(
    `qemu-system-x86_64 -M q35,cxl=on,cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G -m 1G \\
  -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \\
  -M ⟦cxl-fmw.1.targets.0=cxl.1,cxl-fmw.1.size=4G⟧ \\
  -nodefaults
`,
    'cxl-fmw-split',
  );
  const fixed = applyFix(text, got[0]);
  assert.equal(
    fixed,
    `qemu-system-x86_64 -M q35,cxl=on,cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G,cxl-fmw.1.targets.0=cxl.1,cxl-fmw.1.size=4G -m 1G \\
  -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \\
  -nodefaults
`,
  );
});

test("backing-file-twice: the later, larger backend on a file an earlier one of the node creates; QEMU's numbers; the earlier size related", () => {
  const { text, got } = check(
    `qemu-system-x86_64 -M q35 -m 1G \\
  -object memory-backend-file,id=fam,mem-path=fam.raw,size=1G,share=on \\
  -object memory-backend-file,id=fam2,mem-path=./fam.raw,size=⟦2G⟧,share=on \\
  -object memory-backend-file,id=small,mem-path=fam.raw,size=512M,share=on \\
  -device ivshmem-plain,memdev=fam,id=shm0
`,
    'backing-file-twice',
  );
  const d = got[0];
  assert.equal(d.severity, 'error');
  // QEMU 7.2 (test/corpus/qemu/146): "backing store size 0x40000000 does not match 'size' option 0x80000000"
  assert.match(d.message, /QEMU: "backing store size 0x40000000 does not match 'size' option 0x80000000"/);
  assert.match(d.message, /0x80000000 \(2 GiB\)/);
  assert.match(d.message, /0x40000000 \(1 GiB\)/);
  assert.equal(d.related?.length, 1);
  assert.equal(text.slice(d.related![0].span.start, d.related![0].span.end), '1G');
});

test('backing-file-twice: silent when the larger comes first, for a directory (a file per backend) and for an existing file (backing-file-size)', () => {
  const line = (a: string, b: string, path = 'fam.raw') =>
    `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=f1,mem-path=${path},size=${a},share=on -object memory-backend-file,id=f2,mem-path=${path},size=${b},share=on -device ivshmem-plain,memdev=f1\n`;
  const codes = (text: string, host?: HostProbe) => analyzeDocument(text, SOURCE, host).diagnostics.map((d) => d.code);
  assert.ok(codes(line('1G', '2G')).includes('backing-file-twice'));
  assert.ok(!codes(line('2G', '1G')).includes('backing-file-twice'));
  assert.ok(!codes(line('1G', '1G')).includes('backing-file-twice'));
  const dir: FileInfo = { size: 0n, isFile: false, isDirectory: true, isCharDevice: false };
  const stat = (info: FileInfo): HostProbe => ({ stat: (p) => (p === '/work/x/fam' ? info : ['/', '/work', '/work/x'].includes(p) ? dir : undefined) });
  assert.ok(!codes(line('1G', '2G', '/work/x/fam'), stat(dir)).includes('backing-file-twice'));
  // An existing 1G file: the 2G backend is backing-file-size's, not this rule's.
  const existing = codes(line('1G', '2G', '/work/x/fam'), stat({ size: 1n << 30n, isFile: true, isDirectory: false, isCharDevice: false }));
  assert.ok(existing.includes('backing-file-size') && !existing.includes('backing-file-twice'), existing.join(' '));
  // An existing empty file is sized by the first backend, as a new one.
  assert.ok(codes(line('1G', '2G', '/work/x/fam'), stat({ size: 0n, isFile: true, isDirectory: false, isCharDevice: false })).includes('backing-file-twice'));
});
