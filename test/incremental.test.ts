/**
 * The engine reuses the previous analysis of a document where its text did not
 * change (engine/incremental.ts, analyzeTopology in engine/index.ts, and the
 * XML parser's reuse of unchanged root children). A stale or misplaced kept
 * result is the obvious failure: across sequences of random edits, every
 * incremental analysis must equal an analysis from scratch of the same text,
 * in full: diagnostics with their ranges, related ranges and fixes, node
 * models (every value with the source span of each of its characters), and
 * the parse tree itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeDocument, analyzeDocuments, AnalyzedDocument, forgetAnalysis, NO_HOST, resetAnalysisCache } from '../server/src/engine/index';
import { diffTexts, mapDeep, Region, Regions, Unmappable } from '../server/src/engine/incremental';
import { parseXml } from '../server/src/engine/syntax/xml';
import { NodeTwins } from '../server/src/engine/shapes';
import { cachedHost, nodeHost } from '../server/src/host/probe';
import { machine40, megabyte } from './support/topology-gen';
import { REPO } from './support/cli';
import { canon, canonDoc, sameEditorView } from './support/canon';

function canonAnalysis(r: AnalyzedDocument): unknown {
  return {
    kind: r.kind,
    diagnostics: canon(r.diagnostics),
    nodes: canon(r.nodes),
    topology: r.topology && {
      clusterName: r.topology.clusterName,
      guest: r.topology.guest,
      fabrics: r.topology.fabrics.map((f) => ({ ...f, element: f.element.span })),
      nodes: r.topology.nodes.map((n) => ({ name: n.name, index: n.index, element: n.element.span, inItsParent: n.element.parent?.children.includes(n.element) })),
    },
  };
}

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One random edit of the kinds an editor makes, biased towards places that matter. */
function edit(text: string, r: () => number): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const at = (re: RegExp): number => {
    const all = [...text.matchAll(re)].map((m) => m.index!);
    return all.length ? pick(all) : Math.floor(r() * text.length);
  };
  const kind = Math.floor(r() * 12);
  switch (kind) {
    case 0: {
      // Type a character anywhere, markup included.
      const i = Math.floor(r() * (text.length + 1));
      return text.slice(0, i) + pick(['a', '1', ' ', '\n', '<', '>', '"', '/', '&', '=', '-', '{']) + text.slice(i);
    }
    case 1: {
      // Delete a few characters anywhere.
      const i = Math.floor(r() * text.length);
      return text.slice(0, i) + text.slice(i + 1 + Math.floor(r() * 8));
    }
    case 2: {
      // Change a size (rules on sizes, CXL windows, NUMA sums react).
      const i = at(/size="\d+[MGT]"/g) + 'size="'.length;
      return text.slice(0, i) + pick(['3', '1', '512', '0', '7x']) + text.slice(i + 1);
    }
    case 3: {
      // Copy a whole <node> element after another one (duplicate names, ids).
      const s = at(/<node /g);
      const e = text.indexOf('</node>', s) + '</node>'.length;
      const to = text.indexOf('</node>', e);
      if (e < s || to < 0) return text;
      const t = to + '</node>'.length;
      return text.slice(0, t) + '\n' + text.slice(s, e) + text.slice(t);
    }
    case 4: {
      // Delete a whole <node> element.
      const s = at(/  <node /g);
      const e = text.indexOf('</node>', s);
      return e < 0 ? text : text.slice(0, s) + text.slice(e + '</node>\n'.length);
    }
    case 5: {
      // Edit the template or the fabric (every node depends on them).
      const i = at(/<template |<fabric /g);
      const j = text.indexOf('"', i) + 1;
      return text.slice(0, j) + pick(['x', '8', '1G', '']) + text.slice(j);
    }
    case 6: {
      // The comment the bench edits, with a change of length.
      const i = text.indexOf('bench edit: ') + 'bench edit: '.length;
      return i < 'bench edit: '.length ? text : text.slice(0, i) + pick(['1', '22', '', '-->', '<!--']) + text.slice(i + 1);
    }
    case 7: {
      // Break or mend an end tag.
      const i = at(/<\/(node|cxl|numa|root-port)>/g);
      return r() < 0.5 ? text.slice(0, i) + text.slice(i + 2) : text.slice(0, i) + '</x>' + text.slice(i);
    }
    case 8: {
      // An attribute value: a name, a path, an id.
      const i = at(/(name|path|id|targets)="/g);
      const j = text.indexOf('"', i) + 1;
      return text.slice(0, j) + pick(['n', '/', 'cxl.1 ', '{n}', '&amp;', '&bad;']) + text.slice(j);
    }
    case 9: {
      // Namespaces on the root (every element's namespace changes).
      const i = text.indexOf('<cluster ') + '<cluster '.length;
      return i < '<cluster '.length ? text : text.slice(0, i) + pick(['xmlns="urn:x" ', 'xmlns:q="urn:q" ', 'q:a="1" ']) + text.slice(i);
    }
    case 10: {
      // Raw QEMU options in a node.
      const i = at(/<\/node>/g);
      return text.slice(0, i) + pick(['<qemu>-device ivshmem-plain,memdev=fam</qemu>', '<qemu>-object memory-backend-ram,id=r,size=3M</qemu>', '<append>memmap=1G$4G</append>']) + text.slice(i);
    }
    default: {
      // Count: one element becomes many nodes.
      const i = at(/<node name="/g) + '<node '.length;
      return text.slice(0, i) + pick(['count="3" ', 'count="2" name="n{n}" ', 'count="5000" ']) + text.slice(i);
    }
  }
}

function checkSequence(start: string, source: string, seed: number, edits: number) {
  const r = rng(seed);
  resetAnalysisCache();
  let text = start;
  // (as analyses parse: nodes of one shape left unread until read, engine/shapes.ts NodeTwins)
  let prevDoc = parseXml(text, undefined, new NodeTwins(text));
  analyzeDocument(text, source, nodeHost, 'topology', { information: true });
  for (let k = 0; k < edits; k++) {
    const next = edit(text, r);
    // The parse with reuse equals the parse from scratch (read after every other edit only: the
    // others leave unread twins in the tree the next one reuses and moves).
    const reused = parseXml(next, { prev: prevDoc, change: diffTexts(text, next) }, new NodeTwins(next));
    if (k % 2 === 1) assert.deepStrictEqual(canonDoc(reused), canonDoc(parseXml(next)), `parse after edit ${k} (seed ${seed})`);
    prevDoc = reused;
    text = next;
    const inc = analyzeDocument(text, source, nodeHost, 'topology', { information: true });
    const scratch = analyzeDocument(text, source, nodeHost, 'topology', { information: true, incremental: false });
    assert.deepStrictEqual(canonAnalysis(inc), canonAnalysis(scratch), `analysis after edit ${k} (seed ${seed})`);
    // The same text again (a request after a publish): the same once more.
    if (k % 7 === 0) assert.deepStrictEqual(canonAnalysis(analyzeDocument(text, source, nodeHost, 'topology', { information: true })), canonAnalysis(scratch));
  }
}

test('random edits of the 40-node example: incremental = from scratch', () => {
  const text = readFileSync(join(REPO, 'examples/the-machine-40.cluster.xml'), 'utf8');
  checkSequence(text, join(REPO, 'examples/the-machine-40.cluster.xml'), 2, 20);
});

test("random edits of the bench's 40-node cluster: incremental = from scratch", () => {
  checkSequence(machine40(), join(REPO, 'bench-machine-40.cluster.xml'), 3, 20);
});

test("random edits of the bench's large-document generator (32 KiB): incremental = from scratch", () => {
  checkSequence(megabyte(32 * 1024), join(REPO, 'bench-megabyte.cluster.xml'), 5, 12);
});

test('the edits the bench makes: a digit in the comment, then typing inside a node', () => {
  const source = join(REPO, 'bench-megabyte.cluster.xml');
  resetAnalysisCache();
  let text = megabyte(24 * 1024);
  analyzeDocument(text, source, nodeHost, 'topology', { information: true });
  const at = text.indexOf('bench edit: 0') + 'bench edit: '.length;
  for (let v = 1; v <= 3; v++) {
    text = text.slice(0, at) + String(v) + text.slice(at + 1);
    const inc = analyzeDocument(text, source, nodeHost, 'topology', { information: true });
    assert.deepStrictEqual(canonAnalysis(inc), canonAnalysis(analyzeDocument(text, source, nodeHost, 'topology', { information: true, incremental: false })));
  }
  for (const word of ['<cell id="9" size="1G"/>', '<spm size="3M"/>']) {
    const k = text.indexOf('</numa>', text.length >> 1);
    for (const ch of word) {
      text = text.slice(0, k) + ch + text.slice(k);
      const inc = analyzeDocument(text, source, nodeHost, 'topology', { information: true });
      assert.deepStrictEqual(canonAnalysis(inc), canonAnalysis(analyzeDocument(text, source, nodeHost, 'topology', { information: true, incremental: false })));
    }
  }
  // What the editor reads of the moved nodes (derived ones stay lazy when moved: engine/shapes.ts mapModel) is what a fresh analysis gives.
  const first = text.indexOf('<node ');
  text = text.slice(0, first) + ' ' + text.slice(first);
  const moved = analyzeDocument(text, source, nodeHost, 'topology', { information: true });
  const fresh = analyzeDocument(text, source, nodeHost, 'topology', { information: true, incremental: false, shareShapes: false });
  assert.ok(sameEditorView(moved, fresh, text, 'moved').backends > 10);
});

test('a backing file that appears, grows or goes away between two analyses of the same text is seen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-inc-'));
  try {
    const source = join(dir, 'c.cluster.xml');
    const text = `<cluster name="c">
  <fabric id="fam" size="64M" path="fam.raw"/>
  <node name="left" memory="1G"><attach fabric="fam"/></node>
  <node name="right" memory="1G"><attach fabric="fam"/></node>
</cluster>
`;
    resetAnalysisCache();
    // (One finding for both nodes: on the fabric's size.)
    const codes = () => analyzeDocument(text, source, nodeHost, 'topology').diagnostics.map((d) => `${d.code} ${d.severity}`);
    assert.deepEqual(codes(), []);
    writeFileSync(join(dir, 'fam.raw'), Buffer.alloc(1 << 20, 1)); // smaller than 64M: QEMU refuses
    assert.deepEqual(codes(), ['backing-file-size error']);
    truncateSync(join(dir, 'fam.raw'), 128 << 20); // our own test file, grown (sparse) past 64M: a warning
    assert.deepEqual(codes(), ['backing-file-size warning']);
    rmSync(join(dir, 'fam.raw'));
    assert.deepEqual(codes(), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('several documents analyzed together keep working as a cluster', () => {
  // Two per-node command lines: not topologies (no reuse), and the cluster rule across them.
  const a = '-object memory-backend-file,id=fam,mem-path=/dev/shm/f,size=64M,share=on -device ivshmem-plain,memdev=fam';
  const b = '-object memory-backend-file,id=fam,mem-path=/dev/shm/f,size=128M,share=on -device ivshmem-plain,memdev=fam';
  const r = analyzeDocuments([{ text: a, source: '/x/a.qemu', kind: 'qemu' }, { text: b, source: '/x/b.qemu', kind: 'qemu' }]);
  assert.ok(r.flatMap((x) => x.diagnostics).some((d) => d.code === 'fabric-region-mismatch'));
});

test('a cluster finding (with its related location) stays right while typing moves the nodes it names', () => {
  // Two nodes back one shared file with different sizes: fabric-region-mismatch, on one node's size, related to the other's.
  const node = (name: string, size: string) => `  <node name="${name}" memory="1G">
    <backend id="shared" type="file" size="${size}" path="/dev/shm/memfabric-inc-shared" share="on"/>
    <qemu>-device ivshmem-plain,id=s0,memdev=shared</qemu>
  </node>
`;
  const source = join(REPO, 'inc-mismatch.cluster.xml');
  let text = `<cluster name="m">\n${node('a', '64M')}${node('b', '64M')}${node('c', '128M')}${node('d', '64M')}</cluster>\n`;
  resetAnalysisCache();
  analyzeDocument(text, source, nodeHost, 'topology');
  const check = (what: string) => {
    const inc = analyzeDocument(text, source, nodeHost, 'topology');
    const d = inc.diagnostics.find((x) => x.code === 'fabric-region-mismatch');
    assert.ok(d?.related?.length, `${what}: ${JSON.stringify(inc.diagnostics.map((x) => x.code))}`);
    assert.equal(text.slice(d.span.start, d.span.end), '128M', what);
    assert.equal(text.slice(d.related[0].span.start, d.related[0].span.end), '64M', what);
    assert.deepStrictEqual(canonAnalysis(inc), canonAnalysis(analyzeDocument(text, source, nodeHost, 'topology', { incremental: false })), what);
  };
  // Typing in node a moves b, c and d; in c, the finding's own node is read again; in d, the related one stays.
  for (const [name, ch] of [['a', ' '], ['a', '\n'], ['c', ' '], ['b', '  '], ['d', ' ']] as const) {
    const at = text.indexOf('<qemu>', text.indexOf(`<node name="${name}"`));
    text = text.slice(0, at) + ch + text.slice(at);
    check(`typed ${JSON.stringify(ch)} in node ${name}`);
  }
});

test('kept nodes are not copied: typing in the last node hands back the very models of the others; a forgotten document keeps nothing', () => {
  const source = join(REPO, 'bench-machine-40.cluster.xml');
  resetAnalysisCache();
  let text = machine40();
  const before = analyzeDocument(text, source, NO_HOST, 'topology').nodes;
  const at = text.indexOf('    <', text.lastIndexOf('<node ')) + 4;
  text = text.slice(0, at) + ' ' + text.slice(at);
  const after = analyzeDocument(text, source, NO_HOST, 'topology').nodes;
  assert.equal(after.length, before.length);
  for (let i = 0; i < after.length - 1; i++) assert.equal(after[i], before[i], `node ${i} is the same object`);
  assert.notEqual(after[after.length - 1], before[before.length - 1], 'the edited node was read again');
  // Once the document is forgotten (the editor closed it), nothing of it is kept.
  forgetAnalysis(source);
  const again = analyzeDocument(text, source, NO_HOST, 'topology').nodes;
  assert.notEqual(again[0], after[0]);
  assert.deepStrictEqual(canon(again), canon(after));
});

test('host facts: not asked again within one generation of a caching probe, asked again after it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-gen-'));
  try {
    const source = join(dir, 'g.cluster.xml');
    const node = (n: string) => `  <node name="${n}" memory="1G"><attach fabric="fam"/></node>\n`;
    let text = `<cluster name="g">\n  <fabric id="fam" size="64M" path="fam.raw"/>\n${node('a')}${node('b')}${node('c')}</cluster>\n`;
    let asked = 0;
    let now = 0;
    const host = cachedHost(1000, { stat: (p) => (asked++, nodeHost.stat(p)) }, () => now);
    resetAnalysisCache();
    assert.deepEqual(analyzeDocument(text, source, host, 'topology').diagnostics.map((d) => d.code), []);
    assert.ok(asked > 0);
    // The file appears; within the generation the kept answer stands, even for a changed text.
    writeFileSync(join(dir, 'fam.raw'), Buffer.alloc(1 << 20, 1));
    asked = 0;
    text = text.replace('name="c"', 'name="cc"');
    assert.deepEqual(analyzeDocument(text, source, host, 'topology').diagnostics.map((d) => d.code), []);
    assert.equal(asked, 0, 'no question within the generation');
    // A second later: asked again, and the 1M file (QEMU refuses a 64M mapping of it) is seen.
    now += 1000;
    text = text.replace('name="cc"', 'name="c"');
    assert.deepEqual(analyzeDocument(text, source, host, 'topology').diagnostics.map((d) => d.code), ['backing-file-size']);
    assert.ok(asked > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('regions: unchanged text keeps its region offsets wherever it moves; mapDeep refuses what it cannot map', () => {
  // <r><a/><b/><c/></r>: children at 3, 7, 11.
  const children = [
    { start: 3, end: 7 },
    { start: 7, end: 11 },
    { start: 11, end: 15 },
  ];
  const r0 = Regions.build(19, children)!;
  const text0 = r0.textMap;
  assert.equal(text0.map(8, false), 8, 'the first version: region offsets are text offsets');
  // Type two characters inside <b/> (at 9): a stays, b is new, c moves by 2.
  const change = { start: 9, oldEnd: 9, newEnd: 11, delta: 2 };
  const r1 = Regions.build(21, [children[0], { start: 7, end: 13 }, { start: 13, end: 17 }], r0, change)!;
  const a = r1.ofElement(3)!;
  const b = r1.ofElement(7)!;
  const c = r1.ofElement(13)!;
  assert.equal(a, r0.ofElement(3));
  assert.equal(c, r0.ofElement(11), 'c keeps its region');
  assert.notEqual(b, r0.ofElement(7), 'b is new text');
  assert.ok(!r1.moved(a) && r1.moved(c));
  // c's offsets (11..15 in the first version) are its text offsets 13..17 now.
  assert.equal(r1.toText(11), 13);
  assert.equal(r1.toText(15), 17);
  // A span read now in b goes to region offsets and back.
  const touched = new Set<Region>();
  const mapped = mapDeep({ span: { start: 8, end: 12 } }, r1.toRegion(touched));
  assert.deepEqual([...touched], [b]);
  assert.deepEqual(mapDeep(mapped, r1.textMap), { span: { start: 8, end: 12 } });
  assert.throws(() => mapDeep({ x: new Date(0) }, r1.textMap), Unmappable);
});
