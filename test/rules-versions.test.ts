/**
 * Rules that answer per QEMU version: the same configuration judged for the
 * bundled QEMU 7.2 and 10.0 profiles. Ranges are marked ⟦…⟧ (for the version
 * that reports); messages carry the numbers (hex and human) and the words of
 * the version judged for; silent cases stay silent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeDocument, Diagnostic, NO_HOST } from '../server/src/engine/index';
import { BUNDLED, QemuProfile } from '../server/src/engine/qemu/profile';
import { FileInfo, HostProbe } from '../server/src/engine/rules/rule';
import { marked } from './support/marked';

const Q72 = BUNDLED.find((p) => p.version.startsWith('7.2.'))!;
const Q100 = BUNDLED.find((p) => p.version.startsWith('10.0.'))!;
const SOURCE = '/work/x/node.qemu';

function diags(text: string, qemu: QemuProfile, host: HostProbe = NO_HOST): Diagnostic[] {
  return analyzeDocument(text, SOURCE, host, 'qemu', { qemu, incremental: false }).diagnostics;
}

/** The diagnostics of `code` for `qemu`; their ranges must be the marked ones. */
function check(src: string, code: string, qemu: QemuProfile, host?: HostProbe) {
  const { text, spans } = marked(src);
  const all = diags(text, qemu, host);
  const show = all.map((d) => `${d.code} «${text.slice(d.span.start, d.span.end)}»: ${d.message}`).join('\n');
  const got = all.filter((d) => d.code === code).sort((a, b) => a.span.start - b.span.start);
  assert.deepEqual(got.map((d) => ({ start: d.span.start, end: d.span.end })), spans, show);
  return { text, got, all };
}

/** Codes `qemu` reports for the text (markers stripped). */
function codes(src: string, qemu: QemuProfile, host?: HostProbe): string[] {
  return diags(marked(src).text, qemu, host).map((d) => d.code);
}

function applyFix(text: string, d: Diagnostic, i = 0): string {
  const edits = [...d.fixes![i].edits].sort((a, b) => b.span.start - a.span.start);
  let out = text;
  for (const e of edits) out = out.slice(0, e.span.start) + e.newText + out.slice(e.span.end);
  return out;
}

const CXL = `qemu-system-x86_64 -M q35,cxl=on -m 1G,maxmem=4G,slots=4 \\
  -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \\
  -device cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2 \\
  -device cxl-rp,port=1,bus=cxl.1,id=rp1,chassis=0,slot=3 \\
  -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G \\
`;
const be = (id: string, size: string) => `  -object memory-backend-file,id=${id},share=on,mem-path=${id}.raw,size=${size} \\\n`;

test('cxl-type3-no-memdev: 7.2 asks for memdev=; 10.0 for any backend, and counts DC regions', () => {
  const noMem = `${CXL}${be('lsa', '1M')}  -device ⟦cxl-type3⟧,bus=rp0,lsa=lsa,id=t0\n`;
  const d72 = check(noMem, 'cxl-type3-no-memdev', Q72).got[0];
  assert.match(d72.message, /QEMU: "memdev property must be set" \(QEMU 7\.2\.22\)/);
  const d100 = check(noMem, 'cxl-type3-no-memdev', Q100).got[0];
  assert.match(d100.message, /QEMU: "at least one memdev property must be set" \(QEMU 10\.0\.2\)/);
  // A volatile backend alone is enough from 8.1.
  const vol = `${CXL}${be('v', '256M')}  -device cxl-type3,bus=rp0,volatile-memdev=v,id=t0\n`;
  assert.ok(!codes(vol, Q100).includes('cxl-type3-no-memdev'), codes(vol, Q100).join(' '));
  // DC regions count; a DC backend without regions does not.
  const dc = `${CXL}${be('dc', '512M')}  -device cxl-type3,bus=rp0,num-dc-regions=2,volatile-dc-memdev=dc,id=t0\n`;
  assert.deepEqual(codes(dc, Q100), []);
  const dc0 = `${CXL}${be('dc', '512M')}  -device ⟦cxl-type3⟧,bus=rp0,volatile-dc-memdev=dc,id=t0\n`;
  const d = check(dc0, 'cxl-type3-no-memdev', Q100).got[0];
  assert.match(d.message, /volatile-dc-memdev=dc is ignored while num-dc-regions is 0/);
});

test('cxl-type3-no-lsa: 7.2 for every device; 10.0 only for persistent capacity, with its words', () => {
  const pmem = `${CXL}${be('m', '256M')}  -device ⟦cxl-type3⟧,bus=rp0,memdev=m,id=t0\n`;
  assert.match(check(pmem, 'cxl-type3-no-lsa', Q72).got[0].message, /QEMU: "lsa property must be set" \(QEMU 7\.2\.22\)/);
  assert.match(check(pmem, 'cxl-type3-no-lsa', Q100).got[0].message, /QEMU: "lsa property must be set for persistent devices" \(QEMU 10\.0\.2\)/);
  const ppmem = `${CXL}${be('m', '256M')}  -device ⟦cxl-type3⟧,bus=rp0,persistent-memdev=m,id=t0\n`;
  check(ppmem, 'cxl-type3-no-lsa', Q100);
  const vol = `${CXL}${be('v', '256M')}  -device cxl-type3,bus=rp0,volatile-memdev=v,id=t0\n`;
  check(vol, 'cxl-type3-no-lsa', Q100); // no range: silent
});

test('cxl-type3-memdev-conflict: memdev= with persistent-memdev= from 8.1; the fix removes memdev=', () => {
  const src = `${CXL}${be('a', '256M')}${be('b', '256M')}${be('lsa', '1M')}  -device cxl-type3,bus=rp0,⟦memdev=a⟧,persistent-memdev=b,lsa=lsa,id=t0\n`;
  const { text, got } = check(src, 'cxl-type3-memdev-conflict', Q100);
  assert.match(got[0].message, /QEMU: "\[memdev\] cannot be used with new \[persistent-memdev\] property" \(QEMU 10\.0\.2\)/);
  assert.deepEqual(diags(applyFix(text, got[0]), Q100).map((d) => d.code), []);
  // 7.2 has no persistent-memdev: unknown-property, not this rule.
  const c72 = codes(src, Q72);
  assert.ok(!c72.includes('cxl-type3-memdev-conflict') && c72.includes('unknown-property'), c72.join(' '));
});

test('memdev-busy: a cxl-type3 second user is refused from 9.1, accepted (and reported as aliasing) by 7.2; lsa= is never checked', () => {
  const two = `${CXL}${be('m', '256M')}${be('l0', '1M')}${be('l1', '1M')}  -device cxl-type3,bus=rp0,memdev=m,lsa=l0,id=t0 \\
  -device cxl-type3,bus=rp1,memdev=⟦m⟧,lsa=l1,id=t1\n`;
  const d100 = check(two, 'memdev-busy', Q100).got[0];
  assert.match(d100.message, /QEMU: "memory backend m can't be used multiple times\." \(QEMU 10\.0\.2\)/);
  const d72 = check(two, 'memdev-busy', Q72).got[0];
  assert.match(d72.message, /QEMU 7\.2\.22's cxl-type3 does not check this/);
  // A DC backend that is another device's volatile backend (9.1).
  const dc = `${CXL}${be('dc', '512M')}  -device cxl-type3,bus=rp0,volatile-memdev=dc,id=t0 \\
  -device cxl-type3,bus=rp1,num-dc-regions=1,volatile-dc-memdev=⟦dc⟧,id=t1\n`;
  assert.match(check(dc, 'memdev-busy', Q100).got[0].message, /"memory backend dc can't be used multiple times\."/);
  // After an lsa= use an ivshmem is not refused (QEMU never marks the LSA), but the aliasing is reported.
  const lsaFirst = `${CXL}${be('m', '256M')}${be('l', '4M')}  -device cxl-type3,bus=rp0,memdev=m,lsa=l,id=t0 \\
  -device ivshmem-plain,memdev=⟦l⟧\n`;
  const dl = check(lsaFirst, 'memdev-busy', Q100).got[0];
  assert.doesNotMatch(dl.message, /busy memdev/);
  assert.match(dl.message, /not marked as used/);
});

test('cxl-dc-no-backend, cxl-dc-region-size, cxl-dc-base-unaligned: 10.0 numbers and words; 7.2 has no DC (unknown-property)', () => {
  const none = `${CXL}  -device cxl-type3,bus=rp0,num-dc-regions=⟦1⟧,id=t0\n`;
  assert.match(check(none, 'cxl-dc-no-backend', Q100).got[0].message, /QEMU: "dynamic capacity must have a backing device" \(QEMU 10\.0\.2\)/);
  assert.ok(!codes(none, Q72).includes('cxl-dc-no-backend'));
  assert.ok(codes(none, Q72).includes('unknown-property'));

  const odd = `${CXL}  -object memory-backend-file,id=dc,share=on,mem-path=dc.raw,size=⟦256M⟧ \\
  -device cxl-type3,bus=rp0,num-dc-regions=2,volatile-dc-memdev=dc,id=t0\n`;
  const { text, got } = check(odd, 'cxl-dc-region-size', Q100);
  assert.match(got[0].message, /0x10000000 \(256 MiB\)/);
  assert.match(got[0].message, /2 × 256 MiB = 0x20000000 \(512 MiB\)/);
  assert.match(got[0].message, /QEMU: "backend size is not multiple of region len: 0x8000000" \(QEMU 10\.0\.2\)/);
  assert.deepEqual(diags(applyFix(text, got[0]), Q100).map((d) => d.code), []);
  assert.ok(!codes(odd, Q72).includes('cxl-dc-region-size'));

  const base = `${CXL}  -object memory-backend-file,id=v,share=on,mem-path=v.raw,size=⟦128M⟧ \\
${be('dc', '512M')}  -device cxl-type3,bus=rp0,volatile-memdev=v,num-dc-regions=1,volatile-dc-memdev=dc,id=t0\n`;
  const b = check(base, 'cxl-dc-base-unaligned', Q100);
  assert.match(b.got[0].message, /static capacity of 0x8000000 \(128 MiB\)/);
  assert.match(b.got[0].message, /QEMU: "DC region base not aligned to 0x10000000" \(QEMU 10\.0\.2\)/);
  assert.deepEqual(diags(applyFix(b.text, b.got[0]), Q100).map((d) => d.code), []);
});

test('cxl-switch-cci-target: 10.0 needs target=; the fix names the only upstream port; 7.2 has no such device', () => {
  const src = `${CXL}${be('m', '256M')}${be('l', '1M')}  -device cxl-upstream,bus=rp0,addr=0.0,multifunction=on,id=us0 \\
  -device cxl-downstream,port=0,bus=us0,id=sw0,chassis=0,slot=4 \\
  -device cxl-type3,bus=sw0,memdev=m,lsa=l,id=t0 \\
  -device ⟦cxl-switch-mailbox-cci⟧,bus=rp0,addr=0.1\n`;
  const { text, got } = check(src, 'cxl-switch-cci-target', Q100);
  assert.match(got[0].message, /'us0'/);
  assert.match(got[0].message, /QEMU: "Target not set" \(QEMU 10\.0\.2\)/);
  assert.ok(!diags(applyFix(text, got[0]), Q100).some((d) => d.code === 'cxl-switch-cci-target'));
  const c72 = codes(src, Q72);
  assert.ok(c72.includes('unknown-device-type') && !c72.includes('cxl-switch-cci-target'), c72.join(' '));
});

const file = (size: bigint): FileInfo => ({ size, isFile: true, isDirectory: false, isCharDevice: false });
const dir: FileInfo = { size: 4096n, isFile: false, isDirectory: true, isCharDevice: false };
const hostWith = (files: Record<string, FileInfo>): HostProbe => ({ stat: (p) => files[p] ?? (p === '/work' || p === '/work/x' ? dir : undefined) });

test('backing-file-size: 8.1+ counts offset= and quotes the backend, size and offset; 7.2 words unchanged', () => {
  const host = hostWith({ '/work/x/fam.raw': file(16n << 20n) });
  const past = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=b,mem-path=fam.raw,size=⟦16M⟧,offset=8M,share=on\n`;
  const d = check(past, 'backing-file-size', Q100, host).got[0];
  assert.match(d.message, /offset \+ size = 0x1800000 \(24 MiB\)/);
  assert.match(d.message, /QEMU: "b backing store size 0x1000000 is too small for 'size' option 0x1000000 plus 'offset' option 0x800000" \(QEMU 10\.0\.2\)/);
  // Two halves of one file: neither too small nor too large.
  const halves = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=a,mem-path=fam.raw,size=8M,share=on -object memory-backend-file,id=b,mem-path=fam.raw,size=8M,offset=8M,share=on\n`;
  assert.deepEqual(codes(halves, Q100, host), []);
  // 7.2's words for a small file.
  const small = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=fam,mem-path=fam.raw,size=⟦32M⟧,share=on\n`;
  assert.match(check(small, 'backing-file-size', Q72, host).got[0].message, /QEMU: "backing store size 0x1000000 does not match 'size' option 0x2000000" \(QEMU 7\.2\.22\)/);
  assert.match(check(small, 'backing-file-size', Q100, host).got[0].message, /QEMU: "fam backing store size 0x1000000 is too small for 'size' option 0x2000000 plus 'offset' option 0x0"/);
});

test('backing-file-twice: 10.0 words, and an offset that reaches past the first backend counts', () => {
  const src = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=a,mem-path=new.raw,size=8M,share=on -object memory-backend-file,id=b,mem-path=new.raw,size=⟦8M⟧,offset=4M,share=on\n`;
  const d = check(src, 'backing-file-twice', Q100).got[0];
  assert.match(d.message, /QEMU: "b backing store size 0x800000 is too small for 'size' option 0x800000 plus 'offset' option 0x400000"/);
});

test('backend-size-page-multiple: memfd in both versions with each one\'s backing-store words; file only from 9.1', () => {
  const memfd = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-memfd,id=odd,size=⟦1000000⟧\n`;
  const a = check(memfd, 'backend-size-page-multiple', Q72);
  assert.match(a.got[0].message, /size 0xf4240 \(/);
  assert.match(a.got[0].message, /0xf5000/);
  assert.match(a.got[0].message, /QEMU: "backing store size 0xf4240 does not match 'size' option 0xf5000" \(QEMU 7\.2\.22\)/);
  const b = check(memfd, 'backend-size-page-multiple', Q100);
  assert.match(b.got[0].message, /QEMU: "odd backing store size 0xf4240 is too small for 'size' option 0xf5000 plus 'offset' option 0x0" \(QEMU 10\.0\.2\)/);
  assert.deepEqual(diags(applyFix(b.text, b.got[0]), Q100).map((d) => d.code), []);
  const f = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=odd,mem-path=odd.raw,size=⟦1000000⟧\n`;
  assert.match(check(f, 'backend-size-page-multiple', Q100).got[0].message, /QEMU: "backend 'memory-backend-file' memory size must be multiple of 4 KiB"/);
  assert.deepEqual(codes(f, Q72), []);
  const ram = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-ram,id=odd,size=1000000\n`;
  assert.deepEqual(codes(ram, Q100), []);
});

test('backend-rom-readonly: rom=on needs readonly=on, rom=off with readonly=on needs share=off (8.2+)', () => {
  const on = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=r0,mem-path=rom.raw,size=4M,rom=⟦on⟧\n`;
  const a = check(on, 'backend-rom-readonly', Q100);
  assert.match(a.got[0].message, /QEMU: "property 'rom' = 'on' is not supported with 'readonly' = 'off'" \(QEMU 10\.0\.2\)/);
  assert.deepEqual(diags(applyFix(a.text, a.got[0]), Q100).map((d) => d.code), []);
  const off = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=r0,mem-path=rom.raw,size=4M,readonly=on,share=on,rom=⟦off⟧\n`;
  assert.match(check(off, 'backend-rom-readonly', Q100).got[0].message, /"property 'rom' = 'off' is incompatible with 'readonly' = 'on' and 'share' = 'on'"/);
  const fine = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=r0,mem-path=rom.raw,size=4M,readonly=on,rom=off\n`;
  assert.deepEqual(codes(fine, Q100), []);
  assert.ok(!codes(on, Q72).includes('backend-rom-readonly')); // 7.2: unknown-property instead
  assert.ok(codes(on, Q72).includes('unknown-property'));
});

test('virtio-mem-prealloc-memdev: 10.0 refuses a prealloc=on memdev; the fix moves prealloc to the device; 7.2 accepts', () => {
  const src = `qemu-system-x86_64 -M q35 -m 1G,maxmem=4G -object memory-backend-ram,id=vmem0,size=1G,⟦prealloc=on⟧ -device virtio-mem-pci,id=vm0,memdev=vmem0,bus=pcie.0\n`;
  const { text, got } = check(src, 'virtio-mem-prealloc-memdev', Q100);
  assert.match(got[0].message, /QEMU: "'memdev' property specifies a memdev with preallocation enabled: vmem0\. Instead, specify 'prealloc=on' for the virtio-mem device\. " \(QEMU 10\.0\.2\)/);
  const fixed = applyFix(text, got[0]);
  assert.match(fixed, /size=1G -device virtio-mem-pci,id=vm0,memdev=vmem0,bus=pcie\.0,prealloc=on/);
  assert.deepEqual(diags(fixed, Q100).map((d) => d.code), []);
  assert.deepEqual(codes(src, Q72), []);
});

test('reserved-ram-id: an object named pc.ram, in both versions with each one\'s words; silent with memory-backend=', () => {
  const src = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-ram,id=⟦pc.ram⟧,size=1G\n`;
  const a = check(src, 'reserved-ram-id', Q72);
  assert.match(a.got[0].message, /QEMU: "object name 'pc\.ram' is reserved for the default RAM backend, it can't be used for any other purposes\. Change the object's 'id' to something else" \(QEMU 7\.2\.22\)/);
  const b = check(src, 'reserved-ram-id', Q100);
  assert.match(b.got[0].message, /QEMU: "object's id 'pc\.ram' is reserved for the default RAM backend, it can't be used for any other purposes" \(QEMU 10\.0\.2\)/);
  const fixed = applyFix(b.text, b.got[0]);
  assert.match(fixed, /-M q35,memory-backend=pc\.ram /);
  for (const q of [Q72, Q100]) assert.ok(!codes(fixed, q).includes('reserved-ram-id'));
});

test('phys-bits-too-low: the address-space limit of each version, on the offending value, with QEMU\'s numbers', () => {
  // 184: both versions, the same numbers.
  const pb = `qemu-system-x86_64 -M q35 -m 4G -cpu qemu64,phys-bits=⟦33⟧\n`;
  for (const [q, v] of [[Q72, '7\\.2\\.22'], [Q100, '10\\.0\\.2']] as const) {
    const { text, got } = check(pb, 'phys-bits-too-low', q);
    assert.match(got[0].message, /33 physical address bits \(up to 0x1ffffffff \(/);
    assert.match(got[0].message, /0x97fffffff/);
    assert.match(got[0].message, new RegExp(`QEMU: "Address space limit 0x1ffffffff < 0x97fffffff phys-bits too low \\(33\\)" \\(QEMU ${v}\\)`));
    const fixed = applyFix(text, got[0]);
    assert.match(fixed, /phys-bits=36/);
    assert.ok(!codes(fixed, q).includes('phys-bits-too-low'));
  }
  // 185: a CPU without long mode and maxmem=64G: 7.2 starts (qemu32 has 32 bits there), 10.0 counts the device memory.
  const q32 = `qemu-system-x86_64 -M q35 -m 2G,maxmem=⟦64G⟧,slots=2 -cpu qemu32\n`;
  assert.ok(!codes(q32, Q72).includes('phys-bits-too-low'));
  const d = check(q32, 'phys-bits-too-low', Q100).got[0];
  assert.match(d.message, /QEMU: "Address space limit 0xfffffffff < 0x10ffffffff phys-bits too low \(36\)"/);
  // 186: both refuse, with different limits.
  const p3 = `qemu-system-x86_64 -M q35 -m 2G,maxmem=⟦80G⟧,slots=2 -cpu pentium3\n`;
  assert.match(check(p3, 'phys-bits-too-low', Q72).got[0].message, /< 0x1cffffffff phys-bits too low \(36\)"/);
  assert.match(check(p3, 'phys-bits-too-low', Q100).got[0].message, /< 0x14ffffffff phys-bits too low \(36\)"/);
  // Machine types up to 8.1 keep the old 32-bit check in 10.0; enough bits: silent.
  assert.ok(!codes(`qemu-system-x86_64 -M pc-q35-8.1 -m 2G,maxmem=64G,slots=2 -cpu qemu32\n`, Q100).includes('phys-bits-too-low'));
  assert.ok(!codes(`qemu-system-x86_64 -M q35 -m 4G -cpu qemu64,phys-bits=36\n`, Q100).includes('phys-bits-too-low'));
  // The AMD move past the HyperTransport hole (qemu64 is AMD): 1000G of maxmem no longer fits 40 bits.
  const amd = codes(`qemu-system-x86_64 -M q35 -m 1G,maxmem=1000G,slots=2\n`, Q100);
  assert.ok(amd.includes('phys-bits-too-low'), amd.join(' '));
});

test('messages of version-aware texts name the version judged for', () => {
  const fmw = `${CXL.replace('cxl-fmw.0.size=4G', 'cxl-fmw.0.size=300M')}${be('m', '256M')}${be('l', '1M')}  -device cxl-type3,bus=rp0,memdev=m,lsa=l,id=t0\n`;
  const f = (q: QemuProfile) => diags(fmw, q).find((d) => d.code === 'cxl-fmw-size-256m')!.message;
  assert.match(f(Q72), /must my a multiple of 256MiB" \(QEMU 7\.2\.22\)/);
  assert.match(f(Q100), /must be a multiple of 256MiB" \(QEMU 10\.0\.2\)/);
  const vm = `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-ram,id=v,size=512M -device virtio-mem-pci,id=vm0,memdev=v,bus=pcie.0\n`;
  const m = (q: QemuProfile) => diags(vm, q).find((d) => d.code === 'memory-device-needs-maxmem')!.message;
  assert.match(m(Q72), /"memory devices \(e\.g\. for memory hotplug\) are not enabled, please specify the maxmem option"/);
  assert.match(m(Q100), /"the configuration is not prepared for memory devices \(e\.g\., for memory hotplug\), consider specifying the maxmem option"/);
  const mt = `qemu-system-x86_64 -M pc-q35-2.3 -m 1G\n`;
  const t = (q: QemuProfile) => diags(mt, q).find((d) => d.code === 'unknown-machine-type')!.message;
  assert.match(t(Q100), /"unsupported machine type: \\?"pc-q35-2\.3\\?""/);
  assert.doesNotMatch(t(Q72), /unsupported machine type: /);
  const vol = `${CXL}${be('v', '256M')}  -device cxl-type3,bus=rp0,volatile-memdev=v,id=t0\n`;
  const u = diags(vol, Q72).find((d) => d.code === 'unknown-property')!.message;
  assert.match(u, /arrived in 8\.1/);
  assert.ok(!diags(vol, Q100).some((d) => d.code === 'unknown-property'));
  // memory-backend-shm is always shared: no ivshmem-share-off.
  assert.deepEqual(codes(`qemu-system-x86_64 -M q35 -m 1G -object memory-backend-shm,id=shm,size=64M -device ivshmem-plain,memdev=shm,id=shm0\n`, Q100), []);
});
