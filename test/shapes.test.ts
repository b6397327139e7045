/**
 * Nodes of one shape (engine/shapes.ts): one node of each shape is read and
 * checked, the second too (to prove the rest can be derived), and the others
 * are derived from the first with their own name, serials, paths and ranges.
 * Whatever sharing does, the analysis must be the one made node by node: the
 * same diagnostics (ranges, related ranges, fixes, messages) and the same
 * models, every value from the same characters, on the examples, the bench's
 * topologies, and documents made to trip it: names the engine also writes
 * (ram0), names inside other names (node1, node10), a name in the template,
 * serials equal within one node and not in another, and backing files that
 * exist for some nodes only (the host answers differ).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeDocument, AnalyzedDocument, NO_HOST } from '../server/src/engine/index';
import { HostProbe } from '../server/src/engine/rules/rule';
import { BUNDLED, QemuProfile } from '../server/src/engine/qemu/profile';
import { nodeHost } from '../server/src/host/probe';
import { machine40, megabyte } from './support/topology-gen';
import { REPO } from './support/cli';
import { canon, canonDoc, sameEditorView } from './support/canon';
import { canProve, hasToken, NodeTwins, shapeOf, summaryOf } from '../server/src/engine/shapes';
import { diffTexts } from '../server/src/engine/incremental';
import { parseXml, XmlDocument, XmlElement } from '../server/src/engine/syntax/xml';
import { NodeModel } from '../server/src/engine/model/model';

function analyze(text: string, source: string, host: HostProbe, shareShapes: boolean, qemu?: QemuProfile): AnalyzedDocument {
  return analyzeDocument(text, source, host, undefined, { information: true, incremental: false, shareShapes, ...(qemu ? { qemu } : {}) });
}

/** Shared and node by node: the same diagnostics and models. */
function same(text: string, source: string, host: HostProbe = NO_HOST, what = source, qemu?: QemuProfile): AnalyzedDocument {
  const shared = analyze(text, source, host, true, qemu);
  const alone = analyze(text, source, host, false, qemu);
  assert.deepEqual(shared.diagnostics, alone.diagnostics, `${what}: diagnostics`);
  assert.equal(shared.nodes.length, alone.nodes.length);
  shared.nodes.forEach((n, i) => assert.deepEqual(canon(n), canon(alone.nodes[i]), `${what}: node ${n.name}`));
  return shared;
}

test('every example (judged for QEMU 7.2 and 10.0), and the bench topologies: the same diagnostics and models with shapes shared as node by node', () => {
  const dir = join(REPO, 'examples');
  const q10 = BUNDLED.find((p) => p.arch === 'x86_64' && p.version.startsWith('10.0'))!;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cluster.xml'))) {
    same(readFileSync(join(dir, f), 'utf8'), join(dir, f));
    same(readFileSync(join(dir, f), 'utf8'), join(dir, f), NO_HOST, `${f} (QEMU 10.0)`, q10);
  }
  // (one node of a shape read, a second to prove it, the rest derived)
  assert.deepEqual(same(machine40(), join(REPO, 'bench-machine-40.cluster.xml')).shapes, { read: 2, derived: 38 });
  const mb = same(megabyte(128 * 1024), join(REPO, 'bench-megabyte.cluster.xml'));
  assert.equal(mb.shapes!.read, 8, 'four kinds of node, two of each read');
  assert.ok(mb.shapes!.derived > 200, JSON.stringify(mb.shapes));
});

const cxlNode = (name: string, sn: [string, string], extra = '') => `  <node name="${name}" template="t">
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12">
        <root-port id="rp0" port="0" chassis="0" slot="2"><type3 id="m0" size="256M" path="files/${name}-m0.raw" lsa-path="files/${name}-l0.raw" sn="${sn[0]}"/></root-port>
        <root-port id="rp1" port="1" chassis="0" slot="3"><type3 id="m1" size="256M" path="files/${name}-m1.raw" sn="${sn[1]}"/></root-port>
      </host-bridge>
      <window size="4G" targets="cxl.1"/>
    </cxl>${extra}
  </node>
`;
const doc = (nodes: string[], template = '') => `<cluster name="trip">
  <template id="t" machine="q35" memory="2G" cpus="2"${template}/>
${nodes.join('')}</cluster>
`;

test('names the engine also writes, names inside names, a name in the template, serials equal in one node only: still the same', () => {
  // ram0 … ram9: the engine names memory backends ram0 … itself
  same(doc(Array.from({ length: 6 }, (_, i) => cxlNode(`ram${i}`, [`0x${i}1`, `0x${i}2`]))), '/nonexistent/a.cluster.xml', NO_HOST, 'ram names');
  // node1 … node12: node1 is inside node10, node11, node12
  same(doc(Array.from({ length: 12 }, (_, i) => cxlNode(`node${i + 1}`, [`0x${i + 1}0`, `0x${i + 1}1`]))), '/nonexistent/b.cluster.xml', NO_HOST, 'node1 in node10');
  // a node named in the template's text
  same(doc([cxlNode('n01', ['1', '2']), cxlNode('n02', ['3', '4']), cxlNode('n03', ['5', '6'])], ' cpu="n02"'), '/nonexistent/c.cluster.xml', NO_HOST, 'name in the template');
  // serials: one node gives both devices the same one (its own shape); serial texts inside other numbers (0x1 in 0x100000000)
  const r = same(doc([cxlNode('s01', ['0x1', '0x2']), cxlNode('s02', ['0x3', '0x4']), cxlNode('s03', ['0x5', '0x5']), cxlNode('s04', ['0x6', '0x7']), cxlNode('s05', ['0x8', '0x9'])]), '/nonexistent/d.cluster.xml', NO_HOST, 'serials');
  assert.ok(r.diagnostics.length > 0);
});

test('a second node that keeps a serial of the first proves nothing of that serial: the next node that changes them all is the proof', () => {
  // Serial 2 is also the 2 of "below 2^64" in the engine's own words (a size's error, kept in every model):
  // n02 keeps it, so deriving n02 leaves that 2 alone, and says nothing of n03's, whose 6 would make it "below 6^64".
  const text = doc([cxlNode('n01', ['1', '2']), cxlNode('n02', ['3', '2']), cxlNode('n03', ['5', '6']), cxlNode('n04', ['7', '8'])]);
  const r = same(text, '/nonexistent/p.cluster.xml', NO_HOST, 'a serial kept');
  assert.equal(r.nodes[2].memory.size?.qemuError, "Parameter 'size' expects a non-negative number below 2^64");
  // n02 read (it proves nothing), n03 read (it changes both serials: the proof fails), n04 read
  assert.deepEqual(r.shapes, { read: 4, derived: 0 });
  // serials that are numbers of their own: n02 proves the shape, n03 and n04 are derived
  const ok = same(doc([cxlNode('n01', ['0x1a', '0x1b']), cxlNode('n02', ['0x1a', '0x2b']), cxlNode('n03', ['0x3a', '0x3b']), cxlNode('n04', ['0x4a', '0x4b']), cxlNode('n05', ['0x5a', '0x5b'])]), '/nonexistent/q.cluster.xml');
  assert.deepEqual(ok.shapes, { read: 3, derived: 2 }, 'n02 keeps 0x1a: n03 is the proof');
  // the same number written otherwise (0x10 and 16, 010 and 8: QEMU reads serials in base 0) proves nothing of it either
  assert.equal(canProve({ name: 'a1', serials: ['0x10'] }, { name: 'a2', serials: ['16'] }), false);
  assert.equal(canProve({ name: 'a1', serials: ['010'] }, { name: 'a2', serials: ['8'] }), false);
  assert.equal(canProve({ name: 'a1', serials: ['0x10', '1'] }, { name: 'a2', serials: ['0x11', '2'] }), true);
  assert.equal(canProve({ name: 'a1', serials: [] }, { name: 'a1', serials: [] }), false);
});

test('backing files that exist for some nodes only, one of the wrong size: each node gets what the host says of its own files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-shapes-'));
  try {
    mkdirSync(join(dir, 'files'));
    for (const n of ['n01', 'n02', 'n03', 'n05']) writeFileSync(join(dir, 'files', `${n}-m0.raw`), '');
    // n05's file is 4 KiB: not the 256 MiB its device wants
    writeFileSync(join(dir, 'files', 'n05-m0.raw'), Buffer.alloc(4096));
    const text = doc(['n01', 'n02', 'n03', 'n04', 'n05', 'n06'].map((n, i) => cxlNode(n, [`0x${i}a`, `0x${i}b`])));
    const r = same(text, join(dir, 'e.cluster.xml'), nodeHost, 'host files');
    const at = (n: string) => r.diagnostics.filter((d) => d.node === n || d.message.includes(`${n}-m0.raw`)).map((d) => d.code).sort();
    assert.notDeepEqual(at('n05'), at('n01'), 'n05 has a finding of its own');
    assert.ok(r.diagnostics.some((d) => /n05-m0\.raw' is 0x1000 \(4 KiB\), smaller than size 0x10000000/.test(d.message)), JSON.stringify(r.diagnostics.map((d) => d.message)));
    // n01, n02 read (the second proves the shape), n03 derived; n04 and n06 have no file (other answers): read; n05 too
    assert.deepEqual(r.shapes, { read: 5, derived: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster rules on derived nodes: a fabric file mapped at two sizes, nodes on hosts named after them', () => {
  // Two shapes of one shared file: n01…n04 map it at 1 GiB, n05…n10 at 2 GiB (the majority): four 1 GiB nodes
  // are reported, two of them derived. Every node runs on a host named after it: host-placement for all but the first.
  const node = (name: string, size: string) => `  <node name="${name}" template="t" host="qemu+ssh://root@${name}-host/system">
    <qemu>-object memory-backend-file,id=famx,size=${size},mem-path=/srv/fam/shared.fam,share=on -device ivshmem-plain,memdev=famx</qemu>
  </node>
`;
  const names = Array.from({ length: 10 }, (_, i) => `n${String(i + 1).padStart(2, '0')}`);
  const r = same(doc(names.map((n, i) => node(n, i < 4 ? '1G' : '2G'))), '/nonexistent/f.cluster.xml', NO_HOST, 'cluster rules');
  assert.deepEqual(r.shapes, { read: 4, derived: 6 });
  const mismatch = r.diagnostics.filter((d) => d.code === 'fabric-region-mismatch');
  assert.deepEqual(
    mismatch.map((d) => d.node),
    ['n01', 'n02', 'n03', 'n04'],
  );
  assert.match(mismatch[3].message, /Node 'n04' maps the shared file \/srv\/fam\/shared\.fam with size 0x40000000 \(1 GiB\), but node 'n05' uses 0x80000000 \(2 GiB\)/);
  const placement = r.diagnostics.filter((d) => d.code === 'host-placement');
  assert.equal(placement.length, 9, JSON.stringify(placement.map((d) => d.message)));
  assert.match(placement[8].message, /Node 'n10' runs on host qemu\+ssh:\/\/root@n10-host\/system but shares the fabric file \/srv\/fam\/shared\.fam with 'n01'/);
});

test('what the editor reads of derived nodes (symbols, definitions, the backends devices use) is what node by node reading gives', () => {
  const texts: [string, string][] = [
    [machine40(), join(REPO, 'bench-machine-40.cluster.xml')],
    [megabyte(128 * 1024), join(REPO, 'bench-megabyte.cluster.xml')],
    [doc(['n01', 'n02', 'n03', 'n04'].map((n, i) => cxlNode(n, [`0x${i}a`, `0x${i}b`], `\n    <qemu>-object memory-backend-ram,id=extra-${n},size=256M -device pc-dimm,memdev=extra-${n},id=dimm-${n}</qemu>`)), ' maxmem="8G" slots="4"'), '/nonexistent/h.cluster.xml'],
  ];
  for (const [text, source] of texts) {
    const shared = analyze(text, source, NO_HOST, true);
    const alone = analyze(text, source, NO_HOST, false);
    assert.ok(shared.shapes!.derived > 0, source);
    const n = sameEditorView(shared, alone, text, source);
    assert.ok(n.occurrences > 0 && n.definitions > 0 && n.backends > 0, JSON.stringify(n));
  }
});

test('a derived node moved by typing keeps what was derived or set on it, mapped (as a node read itself keeps its fields)', () => {
  const source = '/nonexistent/moved.cluster.xml';
  let text = doc(['n01', 'n02', 'n03', 'n04'].map((n, i) => cxlNode(n, [`0x${i}a`, `0x${i}b`])));
  const first = analyzeDocument(text, source, NO_HOST, undefined, { information: true });
  assert.deepEqual(first.shapes, { read: 2, derived: 2 });
  const n04 = first.nodes[3];
  const devices = n04.devices; // derived now
  n04.guestKernel = '6.12'; // set by a caller
  const at = text.indexOf('<node ');
  text = text.slice(0, at) + '  ' + text.slice(at);
  const moved = analyzeDocument(text, source, NO_HOST, undefined, { information: true });
  const m04 = moved.nodes[3];
  assert.equal(m04.guestKernel, '6.12');
  assert.equal(m04.devices.length, devices.length);
  assert.deepEqual(m04.devices[0].m.span(), { start: devices[0].m.span().start + 2, end: devices[0].m.span().end + 2 });
  assert.equal(m04.nameSpan.start, n04.nameSpan.start + 2);
});

test('a summary that does not carry the name along (the last test here: it stays registered): the proof fails, and every node is read', () => {
  const text = doc(['n01', 'n02', 'n03', 'n04'].map((n, i) => cxlNode(n, [`0x${i}a`, `0x${i}b`])));
  assert.deepEqual(same(text, '/nonexistent/g.cluster.xml').shapes, { read: 2, derived: 2 });
  const first = summaryOf((m: NodeModel) => (m.name.endsWith('1') ? 'the first' : 'another'));
  assert.deepEqual(same(text, '/nonexistent/g.cluster.xml').shapes, { read: 4, derived: 0 });
  const r = analyze(text, '/nonexistent/g.cluster.xml', NO_HOST, true);
  assert.deepEqual(r.nodes.map(first), ['the first', 'another', 'another', 'another']);
});

test("a node's shape: its name's occurrences and its serials as holes in text order, and no shape when its name lies inside a serial", () => {
  const shapeIn = (text: string) => {
    const el = parseXml(text).root!.children.find((c): c is XmlElement => c.kind === 'element' && c.local === 'node')!;
    return shapeOf(el, text, '');
  };
  const text = doc([cxlNode('n7', ['0x70', '0x71'])]);
  const s = shapeIn(text)!;
  assert.deepEqual(s.serials, ['0x70', '0x71']);
  const holes = s.holes.map((h) => [text.slice(h.start, h.end), h.start]);
  // (the name in name=, then each device's paths before its serial)
  assert.deepEqual(
    holes.map((h) => h[0]),
    ['n7', 'n7', 'n7', '0x70', 'n7', '0x71'],
  );
  assert.ok(holes.every((h, i) => i === 0 || (h[1] as number) > (holes[i - 1][1] as number)), 'in text order');
  // the key marks name holes and serial holes apart, and is the same for a node alike but for name and serials
  const other = doc([cxlNode('n8', ['0x80', '0x81'])]);
  assert.equal(shapeIn(other)!.key, s.key);
  assert.ok(s.key.split('\u0000').length - 1 === 4 && s.key.split('\u0001').length - 1 === 2, JSON.stringify(s.key));
  // a name that a serial holds (x10 in 0x10): not shared
  assert.equal(shapeIn(doc([cxlNode('x10', ['0x10', '0x11'])])), undefined);
  assert.ok(shapeIn(doc([cxlNode('x10', ['0x20', '0x21'])])));
});

test('twins (NodeTwins): a node that is an earlier one with its name and serials changed is left unread, and reads as a parse of the whole text does', () => {
  const nodesOf = (d: XmlDocument) => d.root!.children.filter((c): c is XmlElement => c.kind === 'element' && c.local === 'node');
  const plain = (name: string, body: string) => `  <node name="${name}" template="t">${body}</node>\n`;
  const cases: { what: string; text: string; unread: number }[] = [
    { what: "the bench's 40 nodes", text: machine40(), unread: 38 },
    // (the first two nodes of a shape are read: the analysis reads them)
    { what: 'cxl nodes, some with equal serials, some with decimal serials', text: doc([cxlNode('n1', ['0x10', '0x11']), cxlNode('n2', ['0x20', '0x20']), cxlNode('n3', ['3', '4']), cxlNode('n4', ['0x40', '0x41']), cxlNode('n5', ['0x50', '0x50']), cxlNode('n6', ['0x60', '0x60'])]), unread: 2 },
    // a name in a comment, in text, in an element name, in an end tag; one dash inside a name is no '--'
    { what: 'names in comments, text and tags', text: doc(['a1', 'b-22', 'c333', 'd4'].map((n) => plain(n, `<!-- ${n} --><x${n}>${n} and ${n}x</x${n}><y k="${n}"/>`))), unread: 2 },
    // '--' in a comment is a problem the model has not: read in full
    { what: "a name with '--'", text: doc(['a1', 'a2', 'b--2'].map((n) => plain(n, `<!-- ${n} -->`))), unread: 0 },
    // a name that ends with '-' meets the '-->' of the comment: read in full
    { what: "a name ending with '-'", text: doc(['a1', 'a2', 'b2-'].map((n) => plain(n, `<!-- x ${n}-->`))), unread: 0 },
    // a model with '&' (a name in a character reference would change it: &#xZ1; is no character): no twins
    { what: "a model with '&'", text: doc(['x1F', 'x2F', 'xZ1'].map((n) => plain(n, `<y v="&#${n};"/>`))), unread: 0 },
    // the twin's name also where the model has other text: not a twin
    { what: 'a name elsewhere in the twin', text: doc([plain('a1', '<x b="z7"/>'), plain('a2', '<x b="z7"/>'), plain('z7', '<x b="z7"/>')]), unread: 0 },
    // a serial that is no number, a count=: read in full
    { what: 'a serial that is no number', text: doc([cxlNode('n1', ['0x10', '0x11']), cxlNode('n2', ['0x20', '0x21']), cxlNode('n3', ['0x3g', '0x31'])]), unread: 0 },
    // a model with a namespace prefix, a root with a default namespace: no twins
    { what: 'a prefix in the model', text: doc(['a1', 'a2', 'a3'].map((n) => plain(n, `<q:x xmlns:q="urn:q" k="${n}"/>`))), unread: 0 },
    { what: 'a default namespace', text: doc(['a1', 'a2', 'a3'].map((n) => plain(n, `<x k="${n}"/>`))).replace('<cluster ', '<cluster xmlns="urn:m" '), unread: 0 },
  ];
  // (an element left unread is of the parser's class for them)
  const unreadIn = (d: XmlDocument) => nodesOf(d).filter((n) => n.constructor.name === 'DeferredElement').length;
  for (const { what, text, unread } of cases) {
    const lazy = parseXml(text, undefined, new NodeTwins(text));
    const eager = parseXml(text);
    assert.equal(unreadIn(lazy), unread, `${what}: nodes left unread`);
    // each node's shape, from its note or from its tree, is the one a parse without twins gives
    nodesOf(lazy).forEach((n, i) => assert.deepEqual(shapeOf(n, text, ''), shapeOf(nodesOf(eager)[i], text, ''), `${what}: shape of node ${i}`));
    assert.deepStrictEqual(canonDoc(lazy), canonDoc(eager), `${what}: the tree, read`);
    assert.equal(unreadIn(lazy), unread, `${what}: read, they stay where they are`);
    const parents = (el: XmlElement): boolean => el.children.every((c) => c.kind === 'text' || (c.parent === el && parents(c)));
    assert.ok(parents(lazy.root!), `${what}: every element's parent`);
  }
  // the problems a twin's name would make are reported (the node was read)
  assert.match(JSON.stringify(parseXml(cases[3].text, undefined, new NodeTwins(cases[3].text)).problems), /inside a comment/);
  assert.match(JSON.stringify(parseXml(cases[5].text, undefined, new NodeTwins(cases[5].text)).problems), /malformed entity reference '&#xZ1;'/);
  // and analyses with and without sharing agree on these documents
  for (const { what, text } of cases.slice(1)) same(text, `/nonexistent/twins-${cases.findIndex((c) => c.what === what)}.cluster.xml`, NO_HOST, what);
});

test('an unread twin kept by the next parse (an edit of the same length) takes the default namespace the edit declared', () => {
  const text = doc(['a1', 'a2', 'a3', 'a4'].map((n) => `  <node name="${n}" template="t"><x k="${n}"/></node>\n`)).replace('<cluster name="trip">', '<cluster name="trip" foo="0123456789">');
  const first = parseXml(text, undefined, new NodeTwins(text));
  assert.ok(first.root!.children.some((c) => c.constructor.name === 'DeferredElement'), 'a twin left unread');
  const next = text.replace('foo="0123456789"', 'xmlns="urn:m:01"');
  assert.equal(next.length, text.length);
  const reused = parseXml(next, { prev: first, change: diffTexts(text, next) }, new NodeTwins(next));
  assert.deepStrictEqual(canonDoc(reused), canonDoc(parseXml(next)));
  const x = (reused.root!.children.filter((c): c is XmlElement => c.kind === 'element').at(-1)!.children.find((c) => c.kind === 'element') as XmlElement);
  assert.equal(x.ns, 'urn:m:01');
});

test('hasToken finds a serial number where the whole-token pattern of derivation does, and nowhere else', () => {
  // The pattern derivation replaces serials with (engine/shapes.ts serialPattern), for one serial.
  const pattern = (t: string) => new RegExp(`(?<![0-9A-Za-z])(${t})(?![0-9A-Za-z])`);
  const serials = ['0x10', '0x11', '1', '12', '0xab'];
  const fixed = ['0x100000000 (4 GiB)', 'sn=0x10', 'sn=0x10,x', '0x10x', 'a0x10', '-0x10-', '0x10', '0x1', '10x10', ' 1 ', '112', '1.2', 'x12', '12_', '0xabc', '0xab-0xab', '0x10 0x100', 'é0x10'];
  // and random strings over the characters that matter
  const chars = '01xab-_ ,.G2';
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 16) % n;
  const random = Array.from({ length: 3000 }, () => Array.from({ length: 1 + rand(14) }, () => chars[rand(chars.length)]).join(''));
  let found = 0;
  for (const s of [...fixed, ...random])
    for (const t of serials) {
      const want = pattern(t).test(s);
      assert.equal(hasToken(s, t), want, `${JSON.stringify(t)} in ${JSON.stringify(s)}`);
      if (want) found++;
    }
  // (the strings hold tokens and near-misses both)
  assert.ok(found > 100, `${found} tokens found`);
});
