/** The topology format: examples, expansion, schema errors, and QEMU rules reported on the topology text. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeDocument } from '../server/src/engine/index';
import { nodeArgv } from '../server/src/engine/emit/argv';
import { marked } from './support/marked';
import { REPO, exampleNeedsQemu } from './support/cli';
import { BUNDLED } from '../server/src/engine/qemu/profile';

const EX = join(REPO, 'examples');

function diagnose(src: string) {
  const { text, spans } = marked(src);
  const r = analyzeDocument(text, '/work/x/test.cluster.xml');
  const got = [...r.diagnostics].sort((a, b) => a.span.start - b.span.start);
  return { text, spans, got, r };
}

/** Assert that the diagnostics are exactly `codes`, on the marked ranges, in order. */
function expectMarked(src: string, codes: string[]) {
  const { text, spans, got } = diagnose(src);
  const show = got.map((d) => `${d.code} «${text.slice(d.span.start, d.span.end)}»: ${d.message}`).join('\n');
  assert.deepEqual(got.map((d) => d.code), codes, show);
  assert.deepEqual(got.map((d) => ({ start: d.span.start, end: d.span.end })), spans, show);
  return got;
}

for (const f of readdirSync(EX).filter((x) => x.endsWith('.cluster.xml'))) {
  test(`example ${f} checks clean`, () => {
    const text = readFileSync(join(EX, f), 'utf8');
    // (judged for QEMU 10.0 when it says it needs a QEMU newer than 7.2)
    const r = analyzeDocument(text, join(EX, f), undefined, undefined, exampleNeedsQemu(text) ? { qemu: BUNDLED.find((p) => p.arch === 'x86_64' && p.version.startsWith('10.0'))! } : {});
    assert.equal(r.kind, 'topology');
    assert.ok(r.nodes.length >= 1);
    assert.deepEqual(r.diagnostics.map((d) => `${d.code}: ${d.message}`), []);
  });
}

test('count and templates expand: 40 nodes named node01..node40 share one fabric', () => {
  const r = analyzeDocument(readFileSync(join(EX, 'the-machine-40.cluster.xml'), 'utf8'), join(EX, 'the-machine-40.cluster.xml'));
  assert.equal(r.nodes.length, 40);
  assert.equal(r.nodes[0].name, 'node01');
  assert.equal(r.nodes[39].name, 'node40');
  for (const n of r.nodes) {
    const argv = nodeArgv(n);
    assert.ok(argv.includes('memory-backend-file,id=fam,mem-path=/srv/fam/the-machine.fam,size=64T,share=on'), argv.join(' '));
    assert.ok(argv.includes('qemu64,phys-bits=48'));
  }
});

test('the FAME example becomes the seed stanza on every node', () => {
  const r = analyzeDocument(readFileSync(join(EX, 'fame-4node.cluster.xml'), 'utf8'), '/data/fame.cluster.xml');
  assert.deepEqual(r.nodes.map((n) => n.name), ['node01', 'node02', 'node03', 'node04']);
  assert.deepEqual(nodeArgv(r.nodes[2]).slice(1), [
    '-machine', 'q35', '-m', 'size=1G', '-smp', '1',
    '-object', 'memory-backend-file,id=fam,mem-path=/data/fam.raw,size=32G,share=on',
    '-device', 'ivshmem-plain,id=fam-shm,memdev=fam,bus=pcie.0',
  ]);
});

test('schema: unknown attribute, missing attribute, misplaced element, dangling references', () => {
  expectMarked(
    `<cluster name="c">
  <fabric id="f" size="1G" path="f.raw" ⟦colour⟧="red"/>
  <⟦fabric⟧ id="g" path="g.raw"/>
  <node name="a" template="⟦nope⟧">
    <attach fabric="⟦missing⟧"/>
    <⟦window⟧ size="1G" targets="x"/>
  </node>
  <node name="⟦a⟧"/>
</cluster>`,
    ['topology-schema', 'topology-schema', 'topology-schema', 'topology-schema', 'topology-schema', 'topology-schema'],
  );
});

test('QEMU rules land on the attribute that produced the value', () => {
  const got = expectMarked(
    `<cluster name="c">
  <fabric id="fam" size="⟦32GB⟧" path="fam.raw"/>
  <fabric id="odd" size="⟦768M⟧" path="odd.raw"/>
  <node name="n" memory="2G">
    <attach fabric="fam"/>
    <attach fabric="odd"/>
    <cxl>
      <host-bridge id="hb">
        <root-port><type3 size="⟦384M⟧"/></root-port>
      </host-bridge>
      <window size="⟦300M⟧" targets="hb"/>
    </cxl>
  </node>
</cluster>`,
    ['size-syntax', 'ivshmem-size-pow2', 'cxl-type3-size-256m', 'cxl-fmw-size-256m'],
  );
  // Value fixes survive in a topology (they replace the attribute value) ...
  assert.deepEqual(got[3].fixes?.map((f) => f.edits.map((e) => e.newText)), [['512M']]);
  assert.deepEqual(got[0].fixes?.map((f) => f.edits.map((e) => e.newText)), [['32G']]);
});

test('raw <qemu> options are read with their positions', () => {
  expectMarked(
    `<cluster name="c">
  <node name="n" machine="q35">
    <qemu>
      -object memory-backend-file,id=x,mem-path=x.raw,size=⟦1GiB⟧,share=on
      -device ivshmem-plain,memdev=x,bus=pcie.0
    </qemu>
  </node>
</cluster>`,
    ['size-syntax'],
  );
});

test('SPM ranges become memmap= kernel options', () => {
  const r = analyzeDocument(
    `<cluster name="c"><node name="n" memory="8G"><spm start="0x140000000" size="512M"/></node></cluster>`,
    '/x/c.cluster.xml',
  );
  const argv = nodeArgv(r.nodes[0]);
  assert.equal(argv[argv.indexOf('-append') + 1], 'memmap=0x20000000%0x140000000-1+0xefffffff');
  assert.deepEqual(r.nodes[0].memmap.map((m) => [m.kind, m.start, m.size, m.newType]), [['convert', 0x140000000n, 0x20000000n, 0xefffffffn]]);
});

test('a broken document still gives diagnostics, never an exception', () => {
  for (const src of ['', '<', '<cluster', '<cluster name="x"><node name="a" count="2"><attach', '<cluster name="x"><node name="{n}" count="99999"/></cluster>', '<domain>', 'not xml at all']) {
    const r = analyzeDocument(src, '/x/broken.cluster.xml');
    assert.ok(Array.isArray(r.diagnostics));
  }
});
