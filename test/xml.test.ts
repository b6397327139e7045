/** The tolerant XML reader: positions, entities, namespaces, recovery. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attr, child, parseXml, textOf, XmlDocument, XmlElement } from '../server/src/engine/syntax/xml';
import { analyzeDocument } from '../server/src/engine/index';
import { NodeTwins } from '../server/src/engine/shapes';

test('attribute values keep exact positions through entity references', () => {
  const text = `<a v="x&amp;y&#x41;z"/>`;
  const doc = parseXml(text);
  const v = attr(doc.root!, 'v')!;
  assert.equal(v.value.text, 'x&yAz');
  assert.deepEqual(v.valueSpan, { start: 6, end: 20 });
  // 'z' is the last character; '&amp;' maps to its whole reference.
  assert.deepEqual(v.value.span(4, 5), { start: 19, end: 20 });
  assert.deepEqual(v.value.span(1, 2), { start: 7, end: 12 });
  assert.equal(doc.problems.length, 0);
});

test('namespaces resolve by URI, whatever the prefix', () => {
  const doc = parseXml(`<domain xmlns:foo="urn:x"><foo:commandline/><bar:commandline/></domain>`);
  const [a, b] = doc.root!.children.filter((c) => c.kind === 'element') as any[];
  assert.equal(a.ns, 'urn:x');
  assert.equal(b.ns, undefined);
  assert.deepEqual(doc.undeclaredPrefixes.map((u) => u.prefix), ['bar']);
});

test('recovers from unclosed elements, stray end tags, unquoted values and a missing >', () => {
  const text = `<r><a x=1><b>t</r></c><d y="2"<e/></r>`;
  const doc = parseXml(text);
  assert.ok(doc.problems.length >= 3, JSON.stringify(doc.problems));
  const a = child(doc.root!, 'a')!;
  assert.equal(attr(a, 'x')!.value.text, '1');
  assert.equal(textOf(child(a, 'b')!).text, 't');
});

test('CDATA, comments, prologue and DOCTYPE are read', () => {
  const doc = parseXml(`<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY e "x">]>\n<!-- c --><r><![CDATA[<raw>&]]></r>`);
  assert.equal(textOf(doc.root!).text, '<raw>&');
  assert.deepEqual(doc.problems, []);
});

test('the engine survives thousands of mutated and truncated documents', () => {
  const seeds = [
    `<cluster name="c"><fabric id="f" size="1G" path="f.raw"/><node name="n{n}" count="3" memory="2G"><attach fabric="f"/><cxl><host-bridge id="h"><root-port><switch><downstream><type3 size="256M"/></downstream></switch></root-port></host-bridge><window size="4G" targets="h"/></cxl><numa><cell id="0" size="2G"/></numa><spm start="4G" size="1G"/><qemu>-device "x,y=1"</qemu></node></cluster>`,
    `<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>d</name><memory unit='GiB'>2</memory><maxMemory slots='2' unit='GiB'>4</maxMemory><cpu><numa><cell id='0' memory='2' unit='GiB' cpus='0'/></numa></cpu><devices><shmem name='s'><model type='ivshmem-plain'/><size unit='M'>4</size></shmem></devices><qemu:commandline><qemu:arg value='-device'/><qemu:arg value='ivshmem-plain,memdev=x'/></qemu:commandline></domain>`,
    `Q=qemu-system-x86_64\n$Q -M q35,cxl=on \\\n  -m 1G,maxmem=4G,slots=2 \\\n  # c\n  -object memory-backend-file,id=m,mem-path="a b",size=1G \\\n  -device cxl-type3,memdev=m -M cxl-fmw.0.targets.0=x,cxl-fmw.0.size=4G\n`,
  ];
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const alphabet = `<>/="' \\\n,.=-#&;{}$0123456789GMKTabcxyz`;
  for (let i = 0; i < 3000; i++) {
    let t = seeds[i % seeds.length];
    const edits = 1 + rnd(6);
    for (let k = 0; k < edits; k++) {
      const p = rnd(t.length + 1);
      const op = rnd(3);
      if (op === 0) t = t.slice(0, p) + alphabet[rnd(alphabet.length)] + t.slice(p);
      else if (op === 1) t = t.slice(0, p) + t.slice(p + 1 + rnd(8));
      else t = t.slice(0, p);
    }
    for (const name of ['/x/t.cluster.xml', '/x/d.xml', '/x/s.sh']) {
      const r = analyzeDocument(t, name);
      for (const d of r.diagnostics) {
        assert.ok(d.span.start >= 0 && d.span.end <= t.length && d.span.start <= d.span.end, `bad span ${JSON.stringify(d.span)} for ${d.code} in ${JSON.stringify(t)}`);
        assert.notEqual(d.code, 'internal-error', `${d.message} in ${JSON.stringify(t)}`);
      }
    }
  }
});

test("'--' inside a comment is an error at the two hyphens, as libxml2 (xmllint, libvirt) refuses it; a comment without them is fine", { skip: spawnSync('xmllint', ['--version']).status !== 0 && 'xmllint missing' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-xml-'));
  try {
    for (const [text, bad] of [['<a><!-- memfabric exec F n -- ls --></a>\n', true], ['<a><!-- x ---></a>\n', true], ['<a><!-- a - b - c --></a>\n', false]] as const) {
      const doc = parseXml(text);
      const f = join(dir, 'c.xml');
      writeFileSync(f, text);
      const lint = spawnSync('xmllint', ['--noout', f], { encoding: 'utf8' });
      assert.equal(lint.status !== 0, bad, lint.stderr);
      if (bad) assert.match(lint.stderr, /Double hyphen within comment/);
      const dd = doc.problems.filter((p) => /'--' inside a comment/.test(p.message));
      assert.equal(dd.length, bad ? 1 : 0, JSON.stringify(doc.problems));
      if (bad) assert.equal(text.slice(dd[0].span.start, dd[0].span.end), '--');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A full garbage collection (the test process runs without --expose-gc). */
function collect(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** The largest string the heap holds (self size, in bytes), from a heap snapshot. */
function largestString(): number {
  const snap = JSON.parse(readFileSync(writeHeapSnapshot(join(mkdtempSync(join(tmpdir(), 'mf-heap-')), 'h.heapsnapshot')), 'utf8'));
  const meta = snap.snapshot.meta;
  const [nf, types] = [meta.node_fields.length, meta.node_types[0]];
  const [ti, si] = [meta.node_fields.indexOf('type'), meta.node_fields.indexOf('self_size')];
  let max = 0;
  for (let i = 0; i < snap.nodes.length; i += nf) if (/string/.test(types[snap.nodes[i + ti]])) max = Math.max(max, snap.nodes[i + si]);
  return max;
}

test('a tree keeps no view of its text: attribute values, names and texts of 13 characters or more are strings of their own', () => {
  // (V8 makes such a slice a view of the whole text; the tree of a document outlives the text once typing reuses its elements)
  // (the text made and dropped in a function of its own: no local keeps it or its parts)
  const doc = ((big: number) =>
    parseXml(`<cluster name="a-cluster-name-of-some-length"><!-- ${'x'.repeat(big)} -->\n        <node name="node-with-a-long-name" path="/srv/some/long/path/to/a/file.raw">text of more than thirteen characters</node>\n</cluster>\n`))(2_000_000);
  const n = child(doc.root!, 'node')!;
  assert.equal(attr(n, 'path')!.value.text, '/srv/some/long/path/to/a/file.raw');
  collect();
  // (module sources are the next largest strings: zod's is 140 KB)
  assert.ok(largestString() < 1_000_000, 'the 2 MB text is gone, the tree alive');
  assert.equal(textOf(n).text, 'text of more than thirteen characters');
});

test('an element moved by an edit before it keeps nothing of the previous tree (its old root) alive', async () => {
  const node = (i: number) => `  <node name="n${i}" memory="1G"><cxl><window size="4G"/></cxl></node>\n`;
  const before = `<cluster name="c">\n${[1, 2, 3].map(node).join('')}</cluster>\n`;
  const after = before.replace('<cluster name="c">', '<cluster name="cc">');
  let prev: XmlDocument | undefined = parseXml(before);
  const oldRoot = new WeakRef(prev.root!);
  const at = before.indexOf('"c"') + 2;
  const doc = parseXml(after, { prev, change: { start: at, oldEnd: at, newEnd: at + 1, delta: 1 } });
  // (the nodes after the edit are taken from the previous tree, moved by one, their attributes and children not read yet)
  const nodes = doc.root!.children.filter((c) => c.kind === 'element');
  assert.equal(nodes.length, 3);
  assert.ok(nodes.every((c) => c.constructor.name === 'MovedElement'), 'the nodes were reused');
  prev = undefined;
  await new Promise((r) => setImmediate(r));
  collect();
  assert.equal(oldRoot.deref(), undefined, 'the previous root was collected');
  assert.equal(attr(nodes[2] as XmlElement, 'name')!.value.text, 'n3');
  assert.equal(textOf(child(nodes[0] as XmlElement, 'cxl')!).text, '');
});

test('a twin left unread keeps its document\'s text, and the next parse\'s keeps the next text: no text a document no longer has', async () => {
  // (engine/shapes.ts NodeTwins: the first two nodes are read, the others left unread until read)
  const node = (i: number) => `  <node name="n${i}" memory="1G"><cxl><window size="4G" targets="cxl-n${i}"/></cxl></node>\n`;
  const nodes = [1, 2, 3, 4, 5].map(node).join('');
  const make = (big: number) => `<cluster name="c"><!-- ${'x'.repeat(big)} -->\n${nodes}</cluster>\n`;
  let before: string | undefined = make(2_000_000);
  let prev: XmlDocument | undefined = parseXml(before, undefined, new NodeTwins(before));
  assert.ok(prev.root!.children.some((c) => c.constructor.name === 'DeferredElement'), 'twins left unread');
  // the edit drops the 2 MB comment: the nodes after it are taken from the previous tree, moved
  const after = make(1);
  const start = before.indexOf('<!--') + 5;
  const doc = parseXml(after, { prev, change: { start, oldEnd: start + 2_000_000 - 1, newEnd: start, delta: 1 - 2_000_000 } }, new NodeTwins(after));
  const els = doc.root!.children.filter((c): c is XmlElement => c.kind === 'element');
  assert.ok(els.some((c) => c.constructor.name === 'DeferredElement'), 'still unread after the edit');
  [before, prev] = [undefined, undefined];
  await new Promise((r) => setImmediate(r));
  collect();
  assert.ok(largestString() < 1_000_000, 'the 2 MB text is gone, the unread twins alive');
  assert.equal(attr(child(child(els[4], 'cxl')!, 'window')!, 'targets')!.value.text, 'cxl-n5');
  assert.deepEqual(child(child(els[4], 'cxl')!, 'window')!.span, { start: after.indexOf('<window size="4G" targets="cxl-n5"'), end: after.indexOf('/></cxl></node>\n</cluster>') + 2 });
});
