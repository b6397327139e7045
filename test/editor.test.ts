/**
 * The editor features of the pure engine (server/src/engine/editor/), called
 * directly: cursor context, completion, hover, quick fixes, outline,
 * definition/references/rename, and which documents are served. Fixtures
 * mark the cursor with ‸ and expected ranges with ⟦…⟧ (test/support/marked.ts).
 * The language server test (lsp.test.ts) runs the same features over LSP.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { analyzeDocument } from '../server/src/engine/index';
import { EditorAnalysis, ServedKind, servedKind } from '../server/src/engine/editor/analysis';
import { enclosingElement, enclosingForward, enclosingNear, previousQemuArg, qemuWordContext, xmlContext } from '../server/src/engine/editor/context';
import { complete, Completion } from '../server/src/engine/editor/completion';
import { hover } from '../server/src/engine/editor/hover';
import { applyEdits, quickFixes } from '../server/src/engine/editor/fixes';
import { definition, prepareRename, references, rename } from '../server/src/engine/editor/navigation';
import { outline } from '../server/src/engine/editor/outline';
import { marked } from './support/marked';

const ROOT = resolve(__dirname, '../..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

/** A fixture: ‸ is the cursor, ⟦…⟧ the expected ranges (offsets of the text without markers). */
function fixture(src: string): { text: string; cursor: number; spans: { start: number; end: number }[] } {
  const at = src.indexOf('‸');
  const cursor = at < 0 ? -1 : marked(src.slice(0, at)).text.length;
  const { text, spans } = marked(src.replace('‸', ''));
  return { text, cursor, spans };
}

function analyzed(text: string, source: string, kind?: ServedKind): EditorAnalysis {
  const doc = analyzeDocument(text, source, undefined, kind, { information: true });
  return new EditorAnalysis(text, (kind ?? doc.kind) as ServedKind, doc);
}

/** Completion at the fixture's cursor, analyzed as written. */
function completeAt(src: string, source: string, kind: ServedKind): { items: Completion[]; spans: { start: number; end: number }[]; text: string } {
  const f = fixture(src);
  return { items: complete(f.text, f.cursor, kind, analyzed(f.text, source, kind).completionData()), spans: f.spans, text: f.text };
}
const labels = (xs: Completion[]) => xs.map((x) => x.label);


const TOPO = '<cluster name="c">\n  <fabric id="fam" size="1G" path="f.raw"/>\n  <template id="small" memory="1G"/>\n';

describe('editor: which documents are served', () => {
  it('topology, libvirt (also as plain xml, with or without a prologue), QEMU command lines and launch scripts; other XML is left alone', () => {
    const domain = "<domain type='kvm'>\n  <name>n</name>\n</domain>\n";
    assert.equal(servedKind('<cluster name="c"/>', '/x/a.xml', 'xml'), 'topology');
    assert.equal(servedKind('', '/x/new.cluster.xml', 'memfabric-topology'), 'topology');
    assert.equal(servedKind(domain, '/x/d.xml', 'xml'), 'libvirt');
    assert.equal(servedKind('<?xml version="1.0" encoding="UTF-8"?>\n<!-- node -->\n' + domain, '/x/d.xml', 'xml'), 'libvirt');
    assert.equal(servedKind('\ufeff<?xml version="1.0"?>' + domain, '/x/d', 'plaintext'), 'libvirt');
    assert.equal(servedKind('<?xml version="1.0"?>\n<project><size>1GB</size></project>\n', '/x/pom.xml', 'xml'), undefined);
    assert.equal(servedKind('qemu-system-x86_64 -m 1G', '/x/a.txt', 'plaintext'), 'qemu');
    assert.equal(servedKind('-m 1G', '/x/a.qemu', 'plaintext'), 'qemu');
    assert.equal(servedKind('-m 1G', '/x/a', 'qemu-cmdline'), 'qemu');
    assert.equal(servedKind(read('examples/tigon-launch.sh'), join(ROOT, 'examples/tigon-launch.sh'), 'shellscript'), 'qemu');
    assert.equal(servedKind('#!/bin/sh\n"$QEMU" -m 1G\n', '/x/run.sh', 'shellscript'), 'qemu');
    assert.equal(servedKind('#!/bin/sh\necho hello\n', '/x/run.sh', 'shellscript'), undefined);
    assert.equal(servedKind('<project/>', '/x/p', 'plaintext'), undefined);
  });
});

describe('editor: cursor context from the text', () => {
  it('element, attribute, value and text contexts, with the enclosing element', () => {
    let f = fixture(TOPO + '  <node name="a">\n    <⟦at⟧‸');
    let c = xmlContext(f.text, f.cursor);
    assert.equal(c.kind, 'element');
    assert.equal(c.parent, 'node');
    assert.equal(c.valueStart, f.spans[0].start);

    f = fixture(TOPO + '  <fabric id="g" ⟦pa⟧‸');
    c = xmlContext(f.text, f.cursor);
    assert.deepEqual([c.kind, c.element, c.valueStart, c.present], ['attr', 'fabric', f.spans[0].start, ['id']]);
    assert.equal(c.parent, 'cluster');

    f = fixture(TOPO + '  <window targets="⟦cxl.1 cx⟧‸');
    c = xmlContext(f.text, f.cursor);
    assert.deepEqual([c.kind, c.element, c.attr, c.valueStart], ['value', 'window', 'targets', f.spans[0].start]);

    f = fixture(TOPO + '  <node name="a">\n    <qemu>⟦-device x‸⟧');
    c = xmlContext(f.text, f.cursor);
    assert.deepEqual([c.kind, c.parent, c.textStart], ['text', 'qemu', f.spans[0].start]);
  });

  it('the backward scan for the enclosing element agrees with reading the prefix from the start', () => {
    const docs = [
      read('examples/fame-4node.cluster.xml'),
      read('examples/tigon-cxl-dax.cluster.xml'),
      read('examples/cxl-switch.cluster.xml'),
      read('test/fixtures/libvirt/fame.xml'),
      read('test/fixtures/libvirt/egm-rfc.xml'),
      // Comments (one holding tags and a nested <!--), a PI, CDATA, `>` in values and text, quotes, stray and missing end tags.
      '<?xml version="1.0"?>\n<a x=">" y=\'"\'>\n  <!-- <b> <!-- <c> -->\n  <b>1 > 0<![CDATA[ <d> ]]></b>\n  <e/>\n  <f><g></f>\n  </stray>\n  <h>text</h',
      '<cluster><node><attach fabric="x"></node><node><qemu>-device a</qemu>',
      '<a><b></a><b><c></c>',
    ];
    for (const t of docs) {
      for (let end = 0; end <= t.length; end++) {
        assert.equal(enclosingElement(t, end), enclosingForward(t.slice(0, end)), `at ${end} of ${JSON.stringify(t.slice(Math.max(0, end - 40), end))}`);
      }
    }
  });

  it('on a large document: a nearby start tag only when asked for one, and no stale answer after an edit before the cursor', () => {
    const nodes = Array.from({ length: 400 }, (_, i) => `  <node name="n${i}">\n    <attach fabric="f"/>\n  </node>\n`).join('');
    const t = `<cluster name="c">\n${nodes}  <node name="last">\n    <qemu>-device x</qemu>\n  </node>\n`;
    assert.ok(t.length > 4096);
    const end = t.length;
    assert.equal(enclosingElement(t, end), 'cluster');
    assert.equal(enclosingNear(t, end, 64), false);
    assert.equal(enclosingNear(t, t.indexOf('-device x'), 64), 'qemu');
    // The same end offset, a different text before it: a new answer.
    const t2 = t.replace('<cluster name="c">', '<zone name="c"   >');
    assert.equal(t2.length, t.length);
    assert.equal(enclosingElement(t2, end), enclosingForward(t2));
    assert.equal(enclosingElement(t2, end), 'zone');
    // In a topology, text completes only in <qemu>.
    assert.deepEqual(complete(t, end, 'topology', undefined), []);
    assert.ok(labels(complete(t, t.indexOf('</qemu>'), 'topology', undefined)).includes('ivshmem-plain'));
    const inQemu = t.indexOf('-device x') + '-device x'.length;
    assert.ok(labels(complete(t.slice(0, inQemu) + ' -' + t.slice(inQemu), inQemu + 2, 'topology', undefined)).includes('-object'));
  });

  it('QEMU words: the option a value belongs to, across continuations, comment lines and quotes', () => {
    const f = fixture('#!/bin/sh\n"$QEMU" -M q35 \\\n  -object \\\n# a comment: -device\n   \'⟦memory-backend-file,si‸⟧');
    const w = qemuWordContext(f.text, f.cursor);
    assert.deepEqual(w, { start: f.spans[0].start, word: 'memory-backend-file,si', previous: '-object' });
    assert.equal(qemuWordContext('-m 1G ', 6).previous, '1G');
    assert.equal(qemuWordContext('x', 1).previous, undefined);
    // Bounded by a region start (a <qemu> element's text).
    assert.equal(qemuWordContext('<qemu>-device ', 14, 6).previous, '-device');
    assert.equal(qemuWordContext('-device <qemu>', 14, 14).previous, undefined);
  });

  it('libvirt: the previous <qemu:arg value> names the option', () => {
    const t = "<qemu:commandline>\n  <qemu:arg value='-object'/>\n  <qemu:arg value='memory-backend-file'/>\n  <qemu:arg value='-device'/>\n  <qemu:arg value='";
    assert.equal(previousQemuArg(t, t.lastIndexOf('<')), '-device');
    assert.equal(previousQemuArg(t, t.indexOf("<qemu:arg value='memory")), '-object');
    assert.equal(previousQemuArg(t, 10), undefined);
  });
});

describe('editor: completion', () => {
  it('topology: elements of the schema, attributes not yet written, enum values, ids, rule-abiding sizes', () => {
    let r = completeAt(TOPO + '  <⟦‸⟧', '/t/c.cluster.xml', 'topology');
    assert.deepEqual(labels(r.items), ['guest', 'fabric', 'template', 'node']);
    assert.deepEqual(r.items[0].span, r.spans[0]);
    r = completeAt(TOPO + '  <node name="a">\n    <⟦at‸⟧', '/t/c.cluster.xml', 'topology');
    assert.ok(labels(r.items).includes('attach') && labels(r.items).includes('qemu'));
    assert.deepEqual(r.items[0].span, r.spans[0]);
    r = completeAt(TOPO + '  <fabric id="g" ‸', '/t/c.cluster.xml', 'topology');
    assert.deepEqual(labels(r.items).sort(), ['master', 'path', 'size']);
    assert.ok(r.items.every((x) => x.snippet && x.retrigger && x.newText === `${x.label}="$1"`));
    r = completeAt(TOPO + '  <fabric id="g" master="‸', '/t/c.cluster.xml', 'topology');
    assert.deepEqual(labels(r.items), ['on', 'off']);
    r = completeAt(TOPO + '  <node name="a">\n    <attach fabric="⟦f‸⟧', '/t/c.cluster.xml', 'topology');
    assert.deepEqual(r.items.map((x) => [x.label, x.kind, x.span]), [['fam', 'reference', r.spans[0]]]);
    r = completeAt(TOPO + '  <node name="a" template="‸', '/t/c.cluster.xml', 'topology');
    assert.deepEqual(labels(r.items), ['small']);
    r = completeAt(TOPO + '  <fabric id="g" size="‸', '/t/c.cluster.xml', 'topology');
    assert.ok(labels(r.items).includes('32G') && !labels(r.items).includes('768M'));
    assert.equal(r.items.find((x) => x.label === '32G')?.detail, '0x800000000 (32 GiB)');
    r = completeAt(TOPO + '  <node name="a">\n    <qemu>-device ivshmem-plain,memdev=⟦‸⟧', '/t/c.cluster.xml', 'topology');
    assert.deepEqual(r.items.map((x) => [x.label, x.span]), [['fam', r.spans[0]]]);
  });

  it('topology: the host bridges of a window, replacing only the word at the cursor', () => {
    const src = read('examples/cxl-interleave.cluster.xml');
    const i = src.indexOf('targets="') + 'targets="'.length;
    const r = completeAt(src.slice(0, i) + 'cxl.1 ⟦c‸⟧' + src.slice(src.indexOf('"', i)), '/t/i.cluster.xml', 'topology');
    assert.ok(labels(r.items).includes('cxl.1') && labels(r.items).includes('cxl.2'), labels(r.items).join(' '));
    assert.ok(r.items.every((x) => x.span.start === r.spans[0].start && x.span.end === r.spans[0].end));
  });

  it('QEMU: options, drivers, properties, backend ids, the root bus, sizes and booleans', () => {
    const base = 'qemu-system-x86_64 -M q35,cxl=on -m 1G -object memory-backend-file,id=fam,mem-path=fam.raw,size=32G,share=on -object memory-backend-ram,id=vmem,size=256M \\\n  ';
    let r = completeAt(base + '⟦-dev‸⟧', '/t/a.qemu', 'qemu');
    assert.ok(labels(r.items).includes('-device'));
    assert.deepEqual(r.items.find((x) => x.label === '-device')?.span, r.spans[0]);
    r = completeAt(base + '⟦--‸⟧', '/t/a.qemu', 'qemu');
    assert.equal(r.items.find((x) => x.label === '-device')?.newText, '--device');
    r = completeAt(base + '-device ⟦ivsh‸⟧', '/t/a.qemu', 'qemu');
    assert.ok(labels(r.items).includes('ivshmem-plain'));
    assert.equal(r.items.find((x) => x.label === 'ivshmem-plain')?.kind, 'type');
    r = completeAt(base + '-device ivshmem-plain,⟦‸⟧', '/t/a.qemu', 'qemu');
    assert.ok(['memdev', 'id', 'bus'].every((k) => labels(r.items).includes(k)));
    assert.equal(r.items.find((x) => x.label === 'memdev')?.newText, 'memdev=');
    r = completeAt(base + '-device ivshmem-plain,id=x,⟦‸⟧', '/t/a.qemu', 'qemu');
    assert.ok(!labels(r.items).includes('id'));
    r = completeAt(base + '-device ivshmem-plain,memdev=⟦‸⟧', '/t/a.qemu', 'qemu');
    assert.deepEqual(r.items.map((x) => [x.label, x.detail, x.span]).sort(), [
      ['fam', 'backend', r.spans[0]],
      ['vmem', 'backend', r.spans[0]],
    ]);
    r = completeAt(base + '-device ivshmem-plain,bus=‸', '/t/a.qemu', 'qemu');
    assert.ok(labels(r.items).includes('pcie.0'));
    r = completeAt(base.replace('q35', 'pc') + '-device ivshmem-plain,bus=‸', '/t/a.qemu', 'qemu');
    assert.ok(labels(r.items).includes('pci.0') && !labels(r.items).includes('pcie.0'));
    r = completeAt(base + '-object memory-backend-file,id=x,size=‸', '/t/a.qemu', 'qemu');
    assert.ok(labels(r.items).includes('32G') && !labels(r.items).includes('768M'));
    r = completeAt(base + '-M cxl-fmw.0.size=‸', '/t/a.qemu', 'qemu');
    assert.ok(labels(r.items).includes('768M') && !labels(r.items).includes('128M'));
    r = completeAt(base + '-object memory-backend-file,id=y,share=‸', '/t/a.qemu', 'qemu');
    assert.deepEqual(labels(r.items), ['on', 'off']);
    // A backend a cxl-type3 uses takes CXL sizes.
    r = completeAt('qemu-system-x86_64 -M q35,cxl=on -device cxl-type3,persistent-memdev=p,id=t -object memory-backend-file,id=p,size=‸', '/t/a.qemu', 'qemu');
    assert.ok(labels(r.items).includes('768M'));
  });

  it('libvirt domain XML: the elements and attribute values memfabric understands, and QEMU words in <qemu:arg>', () => {
    const dom = "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n  <name>n</name>\n  <memory unit='GiB'>4</memory>\n";
    let r = completeAt(dom + '  <⟦‸⟧', '/t/d.xml', 'libvirt');
    assert.ok(['memory', 'maxMemory', 'vcpu', 'os', 'cpu', 'devices', 'qemu:commandline'].every((x) => labels(r.items).includes(x)), labels(r.items).join(' '));
    assert.deepEqual(r.items[0].span, r.spans[0]);
    r = completeAt(dom + '  <devices>\n    <‸', '/t/d.xml', 'libvirt');
    assert.deepEqual(labels(r.items), ['shmem', 'memory', 'hostdev', 'acpiEgmMemory']);
    r = completeAt(dom + '  <devices>\n    <shmem name="fam">\n      <‸', '/t/d.xml', 'libvirt');
    assert.deepEqual(labels(r.items), ['model', 'size', 'server', 'alias']);
    r = completeAt(dom + "  <devices>\n    <shmem name='fam'>\n      <model type='⟦iv‸⟧", '/t/d.xml', 'libvirt');
    assert.deepEqual(r.items.map((x) => [x.label, x.span]), [
      ['ivshmem-plain', r.spans[0]],
      ['ivshmem-doorbell', r.spans[0]],
    ]);
    r = completeAt(dom + "  <devices>\n    <memory model='‸", '/t/d.xml', 'libvirt');
    assert.deepEqual(labels(r.items), ['dimm', 'nvdimm']);
    r = completeAt(dom + '  <devices>\n    <memory model="dimm">\n      <‸', '/t/d.xml', 'libvirt');
    assert.deepEqual(labels(r.items), ['source', 'target', 'alias']);
    r = completeAt(dom + "  <maxMemory ‸", '/t/d.xml', 'libvirt');
    assert.deepEqual(labels(r.items), ['unit', 'slots']);
    r = completeAt(dom + "  <cpu>\n    <numa>\n      <cell id='0' memAccess='‸", '/t/d.xml', 'libvirt');
    assert.deepEqual(labels(r.items), ['shared', 'private']);
    r = completeAt(dom + "  <memory unit='‸", '/t/d.xml', 'libvirt');
    assert.ok(labels(r.items).includes('GiB'));
    r = completeAt(dom + "  <qemu:commandline>\n    <qemu:arg value='-device'/>\n    <qemu:arg value='⟦ivsh‸⟧", '/t/d.xml', 'libvirt');
    assert.ok(labels(r.items).includes('ivshmem-plain'));
    assert.deepEqual(r.items[0].span, r.spans[0]);
  });

  it('takes ids from an older analysis and spans from the current text (no analysis on a keystroke)', () => {
    const old = 'qemu-system-x86_64 -M q35 -object memory-backend-ram,id=ram0,size=1G\n';
    const a = analyzed(old, '/t/a.qemu', 'qemu');
    const f = fixture('# a line typed since\nqemu-system-x86_64 -M q35 -object memory-backend-ram,id=ram0,size=1G -numa node,memdev=⟦r‸⟧\n');
    const items = complete(f.text, f.cursor, 'qemu', a.completionData());
    assert.deepEqual(items.map((x) => [x.label, x.span]), [['ram0', f.spans[0]]]);
    // No analysis at all: the context still answers.
    assert.ok(labels(complete('-dev', 4, 'qemu', undefined)).includes('-device'));
  });
});

describe('editor: every offset of real documents', () => {
  it('completion, hover and navigation answer at every offset, with spans inside the text that end at the cursor', () => {
    const files: [string, ServedKind][] = [
      ['examples/fame-4node.cluster.xml', 'topology'],
      ['examples/tigon-cxl-dax.cluster.xml', 'topology'],
      ['examples/tigon-launch.sh', 'qemu'],
      ['test/fixtures/libvirt/fame.xml', 'libvirt'],
      ['test/fixtures/libvirt/egm-rfc.xml', 'libvirt'],
    ];
    for (const [file, kind] of files) {
      const text = read(file);
      const a = analyzed(text, join(ROOT, file), kind);
      let offered = 0;
      for (let off = 0; off <= text.length; off++) {
        const items = complete(text, off, kind, a.completionData());
        offered += items.length;
        for (const x of items) assert.ok(x.span.start >= 0 && x.span.start <= x.span.end && x.span.end === off, `${file}@${off}: ${JSON.stringify(x)}`);
        const h = hover(a, off);
        if (h?.span) assert.ok(h.span.start >= 0 && h.span.end <= text.length, `${file}@${off}`);
        for (const s of references(a, off, true) ?? []) assert.ok(s.end <= text.length && text.slice(s.start, s.end).length > 0);
      }
      assert.ok(offered > 0, file);
    }
  });
});

describe('editor: hover', () => {
  const FAM_QEMU = 'qemu-system-x86_64 -M q35 -m 1G \\\n  -object memory-backend-file,id=fam,mem-path=fam.raw,size=⟦32G⟧,share=on \\\n  -device ⟦ivshmem-plain⟧,id=shm0,memdev=fam,bus=pcie.0\n';

  it('a size in hex and human units, over exactly the value', () => {
    const f = fixture(FAM_QEMU);
    const a = analyzed(f.text, '/t/fam.qemu', 'qemu');
    const h = hover(a, f.spans[0].start + 1)!;
    assert.match(h.markdown, /`32G` = \*\*0x800000000 \(32 GiB\)\*\*/);
    assert.deepEqual(h.span, f.spans[0]);
  });

  it('a device: its BARs in the guest (start, end, size); a backend through the device that maps it', () => {
    const f = fixture(FAM_QEMU);
    const a = analyzed(f.text, '/t/fam.qemu', 'qemu');
    const dev = hover(a, f.spans[1].start + 2)!;
    assert.match(dev.markdown, /\*\*shm0\*\* `0000:00:0[0-9a-f]\.0` BAR2: start \*\*0x800000000\*\*, end 0xfffffffff, size 0x800000000 \(32 GiB\), 64-bit prefetchable/);
    const backend = hover(a, f.text.indexOf('mem-path'))!;
    assert.match(backend.markdown, /\*\*fam → shm0\*\* .* BAR2: start \*\*0x800000000\*\*/);
    assert.doesNotMatch(backend.markdown, /BAR0/);
  });

  it('a CXL Type 3 device and its backend: the window its memory is mapped in; a window: its start, end and size', () => {
    const src = read('examples/tigon-cxl-dax.cluster.xml');
    const a = analyzed(src, join(ROOT, 'examples/tigon-cxl-dax.cluster.xml'), 'topology');
    const t3 = hover(a, src.indexOf('<type3') + 2)!;
    assert.match(t3.markdown, /\*\*cxl-pmem0\*\* CXL persistent 64 GiB behind host bridge cxl\.1: mapped in \*\*CXL Window 0\*\*: start \*\*0x[0-9a-f]+\*\*, end 0x[0-9a-f]+, size 0x1000000000 \(64 GiB\), targets cxl\.1/);
    assert.match(t3.markdown, /BAR0: start/);
    assert.equal((t3.markdown.match(/mapped in/g) ?? []).length, 1, 'the device and its backend are one element: said once');
    const win = hover(a, src.indexOf('<window') + 2)!;
    const m = /\*\*CXL Window 0\*\*: start \*\*0x([0-9a-f]+)\*\*, end 0x([0-9a-f]+), size 0x1000000000 \(64 GiB\)/.exec(win.markdown);
    assert.ok(m, win.markdown);
    assert.equal(BigInt('0x' + m[2]) - BigInt('0x' + m[1]) + 1n, 64n << 30n);
    assert.ok(t3.markdown.includes(`start **0x${m[1]}**`), 'the device names the same window');
    const hb = hover(a, src.indexOf('<host-bridge') + 2)!;
    assert.match(hb.markdown, /\*\*cxl\.1\*\* CXL host bridge registers: 0x[0-9a-f]+–0x[0-9a-f]+ \(64 KiB\)/);
  });

  it('a CXL device of a command line with no window for its host bridge says so', () => {
    const text = 'qemu-system-x86_64 -M q35,cxl=on -m 2G -object memory-backend-ram,id=v,size=256M -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 -device cxl-rp,port=0,bus=cxl.1,id=rp,chassis=0,slot=2 -device cxl-type3,bus=rp,volatile-memdev=v,id=t3\n';
    const a = analyzed(text, '/t/c.qemu', 'qemu');
    assert.match(hover(a, text.indexOf('cxl-type3') + 2)!.markdown, /\*\*t3\*\* CXL volatile 256 MiB behind host bridge cxl\.1: no CXL window targets cxl\.1/);
  });

  it('a Specific Purpose Memory range: where the kernel carves it', () => {
    const f = fixture('<cluster name="s">\n  <node name="n" machine="q35" memory="8G">\n    <⟦spm start="0x100000000" size="1G"⟧/>\n  </node>\n</cluster>\n');
    const a = analyzed(f.text, '/t/s.cluster.xml', 'topology');
    const h = hover(a, f.text.indexOf('<spm') + 2)!;
    assert.match(h.markdown, /\*\*memmap\*\* Soft Reserved \(Specific Purpose Memory\): start \*\*0x100000000\*\*, end 0x13fffffff, size 0x40000000 \(1 GiB\)/);
  });

  it('a diagnostic: its rule in one sentence with QEMU’s message; nothing elsewhere', () => {
    const f = fixture('qemu-system-x86_64 -M q35 -m 2G -object memory-backend-ram,id=m,size=⟦1GB⟧\n');
    const a = analyzed(f.text, '/t/b.qemu', 'qemu');
    const h = hover(a, f.spans[0].start + 1)!;
    assert.match(h.markdown, /\*\*size-syntax\*\*: QEMU sizes are/);
    assert.deepEqual(h.span, f.spans[0]);
    assert.equal(hover(a, 3), undefined);
  });
});

describe('editor: quick fixes', () => {
  /** The fix titled title for the diagnostic code; applied, the diagnostic is gone. */
  function fixes(text: string, source: string, code: string, title: RegExp) {
    const a = analyzed(text, source);
    const d = a.doc!.diagnostics.find((x) => x.code === code);
    assert.ok(d, `${code} in ${JSON.stringify(a.doc!.diagnostics.map((x) => x.code))}`);
    const fx = quickFixes(a, { start: d.span.start, end: d.span.start });
    const f = fx.find((x) => title.test(x.title));
    assert.ok(f, JSON.stringify(fx.map((x) => x.title)));
    assert.equal(f.diagnostic, d);
    const fixed = applyEdits(text, f.edits);
    assert.ok(!analyzed(fixed, source).doc!.diagnostics.some((x) => x.code === code), `${code} still there after '${f.title}':\n${fixed}`);
    return { fix: f, fixed, all: fx };
  }

  it('round a CXL size up to its 256 MiB alignment (in a topology attribute)', () => {
    const text = '<cluster name="c">\n  <node name="n" machine="q35" memory="1G">\n    <cxl>\n      <host-bridge id="cxl.1" bus-nr="12">\n        <root-port id="rp0" port="0" chassis="0" slot="2">\n          <type3 id="mem0" size="300M" path="mem0.raw"/>\n        </root-port>\n      </host-bridge>\n      <window size="4G" targets="cxl.1"/>\n    </cxl>\n  </node>\n</cluster>\n';
    const r = fixes(text, '/t/r.cluster.xml', 'cxl-type3-size-256m', /^Round up to 512M$/);
    assert.ok(r.fixed.includes('size="512M"'));
    assert.equal(r.fix.preferred, true);
  });

  it('add share=on to an ivshmem backend', () => {
    const r = fixes('qemu-system-x86_64 -M q35 -m 1G \\\n  -object memory-backend-file,id=fam,mem-path=fam.raw,size=1G \\\n  -device ivshmem-plain,id=shm0,memdev=fam\n', '/t/s.qemu', 'ivshmem-share-off', /^Add share=on$/);
    assert.match(r.fixed, /size=1G,share=on/);
  });

  it('declare the missing xmlns:qemu on <domain>', () => {
    const r = fixes(read('test/fixtures/libvirt/fame-no-namespace.xml'), join(ROOT, 'test/fixtures/libvirt/fame-no-namespace.xml'), 'libvirt-qemu-namespace', /^Declare xmlns:qemu on <domain>$/);
    assert.match(r.fixed, /<domain xmlns:qemu='http:\/\/libvirt.org\/schemas\/domain\/qemu\/1.0'/);
  });

  it('add align=2M to a device-DAX backend', () => {
    const r = fixes('qemu-system-x86_64 -M q35,nvdimm=on -m 1G,slots=2,maxmem=8G \\\n  -object memory-backend-file,id=pm,mem-path=/dev/dax0.0,size=2G,share=on \\\n  -device nvdimm,id=nv0,memdev=pm\n', '/t/a.qemu', 'dax-align', /^Add align=2M$/);
    assert.match(r.fixed, /share=on,align=2M/);
  });

  it('add cxl=on to the machine', () => {
    const r = fixes('qemu-system-x86_64 -M q35 -m 1G \\\n  -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1\n', '/t/c.qemu', 'pxb-cxl-without-cxl-on', /^Add cxl=on to the machine$/);
    assert.match(r.fixed, /-M q35,cxl=on/);
  });

  it('only the diagnostics the span touches; several fixes are none preferred', () => {
    const text = 'qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=m,mem-path=m.raw,size=768M,share=on -device ivshmem-plain,memdev=m,bus=pcie.0\n';
    const a = analyzed(text, '/t/p.qemu');
    const at = text.indexOf('768M');
    const fx = quickFixes(a, { start: at, end: at + 4 });
    assert.deepEqual(fx.map((x) => [x.title, x.preferred]), [
      ['Round up to 1G', false],
      ['Round down to 512M', false],
    ]);
    assert.deepEqual(quickFixes(a, { start: 0, end: 5 }), []);
  });
});

describe('editor: ids and outline', () => {
  it('definition, references and rename of a backend id, with exact spans', () => {
    const f = fixture('qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=⟦fam⟧,mem-path=fam.raw,size=32G,share=on -device ivshmem-plain,id=shm0,memdev=⟦fam⟧ -numa node,memdev=⟦fam⟧\n');
    const a = analyzed(f.text, '/t/ids.qemu', 'qemu');
    const [def, ref1, ref2] = f.spans;
    assert.deepEqual(definition(a, ref2.start + 1), [def]);
    assert.deepEqual(references(a, def.start, true), [def, ref1, ref2]);
    assert.deepEqual(references(a, def.end, false), [ref1, ref2], 'a cursor right after an id is on it');
    assert.deepEqual(prepareRename(a, ref1.start), { span: ref1, placeholder: 'fam' });
    assert.deepEqual(rename(a, ref1.start, 'shared'), { edits: f.spans.map((span) => ({ span, newText: 'shared' })) });
    assert.deepEqual(rename(a, ref1.start, 'no,comma'), { error: "'no,comma' is not a valid id: it starts with a letter and holds letters, digits, _ . -" });
    assert.equal(definition(a, 2), undefined);
    assert.equal(rename(a, 2, 'x'), undefined);
  });

  it('an id referenced but not defined cannot be renamed', () => {
    const f = fixture('qemu-system-x86_64 -M q35 -device ivshmem-plain,memdev=⟦nope⟧\n');
    const a = analyzed(f.text, '/t/u.qemu', 'qemu');
    assert.equal(prepareRename(a, f.spans[0].start), undefined);
    assert.deepEqual(rename(a, f.spans[0].start, 'x'), { error: "'nope' is not defined in this document" });
  });

  it('topology: a fabric id and its <attach>, a template and its use', () => {
    const f = fixture('<cluster name="c">\n  <fabric id="⟦fam⟧" size="1G" path="f.raw"/>\n  <template id="⟦t⟧" memory="1G"/>\n  <node name="n" template="⟦t⟧" machine="q35">\n    <attach fabric="⟦fam⟧"/>\n  </node>\n</cluster>\n');
    const a = analyzed(f.text, '/t/c.cluster.xml', 'topology');
    const [fam, t, tUse, attach] = f.spans;
    assert.deepEqual(references(a, attach.start, true), [fam, attach]);
    assert.deepEqual(definition(a, tUse.start), [t]);
    assert.deepEqual(rename(a, fam.start, 'mem'), { edits: [fam, attach].map((span) => ({ span, newText: 'mem' })) });
  });

  it('outline: the FAME cluster with its fabric and 4 nodes, selections inside their symbols', () => {
    const src = read('examples/fame-4node.cluster.xml');
    const a = analyzed(src, join(ROOT, 'examples/fame-4node.cluster.xml'), 'topology');
    const o = outline(a);
    assert.equal(o.length, 1);
    assert.equal(o[0].name, 'fame');
    assert.equal(o[0].kind, 'cluster');
    assert.deepEqual(o[0].children.map((c) => [c.kind, c.name]), [['fabric', 'fam'], ['node', 'node01'], ['node', 'node02'], ['node', 'node03'], ['node', 'node04']]);
    assert.ok(o[0].children[1].children.some((x) => x.detail === 'ivshmem-plain'));
    const check = (x: (typeof o)[number]) => {
      assert.ok(x.selection.start >= x.span.start && x.selection.end <= x.span.end, x.name);
      x.children.forEach(check);
    };
    o.forEach(check);
    const q = analyzed('qemu-system-x86_64 -name vm1 -object memory-backend-ram,id=r,size=1G\n', '/t/o.qemu', 'qemu');
    assert.deepEqual(outline(q).map((x) => [x.kind, x.children.map((c) => [c.kind, c.name])]), [['node', [['region', 'r']]]]);
  });
});
