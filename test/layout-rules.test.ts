/** Diagnostics that come from the predicted layout, with their ranges and numbers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeDocument } from '../server/src/engine/index';
import { marked } from './support/marked';
import { runCli, REPO } from './support/cli';
import { join } from 'node:path';

function expect(src: string, code: string, opts: { information?: boolean } = {}) {
  const { text, spans } = marked(src);
  const r = analyzeDocument(text, '/x/t.qemu', undefined, undefined, opts);
  const got = r.diagnostics.filter((d) => d.code === code).sort((a, b) => a.span.start - b.span.start);
  assert.deepEqual(got.map((d) => text.slice(d.span.start, d.span.end)), spans.map((s) => text.slice(s.start, s.end)), JSON.stringify(r.diagnostics.map((d) => [d.code, d.message])));
  return got;
}

test('bar-beyond-phys-bits: a 64 GiB fabric with 36 physical address bits', () => {
  const [d] = expect(
    `qemu-system-x86_64 -M q35 -m 1G -cpu qemu64,phys-bits=36 -object memory-backend-file,id=f,mem-path=/f,size=64G,share=on -device ⟦ivshmem-plain⟧,memdev=f,bus=pcie.0\n`,
    'bar-beyond-phys-bits',
  );
  assert.match(d.message, /BAR2 of 0x1000000000 \(64 GiB\) at 0x1000000000 \(64 GiB\)/);
  assert.match(d.message, /leaves it unassigned/);
  assert.match(d.message, /beyond the guest's 36 physical address bits \(0x1000000000 \(64 GiB\)\).*phys-bits=37/);
});

test('bar-beyond-phys-bits: not with the default 40 bits and a 32 GiB fabric', () => {
  expect(`qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=f,mem-path=/f,size=32G,share=on -device ivshmem-plain,memdev=f,bus=pcie.0\n`, 'bar-beyond-phys-bits');
});

test('pci-32bit-exhausted: more 32-bit BAR space than the window holds', () => {
  // Eight VGA cards of 256 MiB of 32-bit video memory each.
  const vgas = Array.from({ length: 8 }, (_, i) => `-device VGA,vgamem_mb=256,id=v${i}`).join(' ');
  const src = `qemu-system-x86_64 -M q35 ⟦-m⟧ 1G ${vgas}\n`;
  // VGA is not in the PCI catalog: the rule must stay quiet rather than guess.
  const r = analyzeDocument(marked(src).text, '/x/t.qemu');
  assert.equal(r.diagnostics.filter((d) => d.code === 'pci-32bit-exhausted').length, 0);
});

test('memmap-outside-ram: a range in the PCI hole, and overlapping ranges', () => {
  const got = expect(
    `qemu-system-x86_64 -M q35 -m 4G -append 'console=ttyS0 memmap=⟦256M$0xc0000000⟧ memmap=1G!4G memmap=⟦512M%0x120000000-1+0xefffffff⟧'\n`,
    'memmap-outside-ram',
  );
  assert.match(got[0].message, /0xc0000000 \(3 GiB\)–0xcfffffff .* is not in guest RAM/);
  assert.match(got[1].message, /overlaps 0x100000000 \(4 GiB\)–0x13fffffff/);
});

test('layout-placement is information, reported when asked for', () => {
  const src = `qemu-system-x86_64 -M q35 -m 2G -object memory-backend-file,id=f,mem-path=/f,size=32G,share=on -device ⟦ivshmem-plain⟧,memdev=f,bus=pcie.0\n`;
  const [d] = expect(src, 'layout-placement', { information: true });
  assert.equal(d.severity, 'information');
  assert.match(d.message, /BAR2 of 0x800000000 \(32 GiB\) at 0x800000000 \(32 GiB\)–0xfffffffff/);
  assert.equal(analyzeDocument(marked(src).text, '/x/t.qemu').diagnostics.length, 0);
});

test('memfabric layout --format json: the documented shape', () => {
  const r = runCli(['layout', '--format', 'json', '--node', 'node01', join(REPO, 'examples', 'fame-4node.cluster.xml')]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.nodes.length, 1);
  const n = out.nodes[0];
  assert.equal(n.name, 'node01');
  assert.equal(n.qemuVersion, '7.2.22');
  assert.ok(n.iomem.some((e: { start: string; end: string; name: string }) => e.start === '0x800000000' && e.end === '0x1000003fff' && e.name === 'PCI Bus 0000:00'));
  assert.ok(n.e820.some((e: { type: string; start: string }) => e.type === 'System RAM' && e.start === '0x100000'));
  const bar2 = n.bars.find((b: { device: string; bar: number }) => b.device === 'fam-shm' && b.bar === 2);
  assert.deepEqual(bar2, { device: 'fam-shm', bdf: '0000:00:03.0', bar: 2, start: '0x800000000', size: '0x800000000', bits: 64, prefetchable: true });
  const text = runCli(['layout', '--node', 'node02', join(REPO, 'examples', 'fame-4node.cluster.xml')]);
  assert.match(text.stdout, /800000000-1000003fff : PCI Bus 0000:00 +~32 GiB/);
});
