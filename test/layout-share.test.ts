/**
 * Nodes whose options the layout reads alike share one layout
 * (engine/index.ts layoutOf): the key leaves out where the options are and
 * the values the layout never reads (backing file paths, serial numbers,
 * -name), and the shared layout's functions point at each node's own devices.
 * Wrong sharing would show as a finding at another node's range, or a finding
 * one node should not have: every rule must find exactly the same with and
 * without sharing, on every example, the bench's generated topologies, and
 * nodes written to differ only in what the layout does or does not read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeDocument, Diagnostic } from '../server/src/engine/index';
import { BUNDLED } from '../server/src/engine/qemu/profile';
import { machine40, megabyte } from './support/topology-gen';
import { REPO } from './support/cli';

const Q10 = BUNDLED.find((p) => p.arch === 'x86_64' && p.version.startsWith('10.0'))!;

function both(text: string, source: string, qemu = BUNDLED[0]): [Diagnostic[], Diagnostic[]] {
  const run = (shareLayouts: boolean) => analyzeDocument(text, source, undefined, undefined, { information: true, incremental: false, qemu, shareLayouts }).diagnostics;
  return [run(true), run(false)];
}

test('every example: the same findings, ranges and related ranges with shared layouts as without', () => {
  const dir = join(REPO, 'examples');
  const files = readdirSync(dir).filter((f) => /\.(xml|qemu|sh)$/.test(f));
  assert.ok(files.length >= 8, files.join(' '));
  for (const f of files) {
    for (const q of [BUNDLED[0], Q10]) {
      const [shared, alone] = both(readFileSync(join(dir, f), 'utf8'), join(dir, f), q);
      assert.deepEqual(shared, alone, `${f} (QEMU ${q.version})`);
    }
  }
});

test("the bench's 40-node and 1 MB topologies (every node its own element, paths and serials): the same findings", () => {
  for (const [name, text] of [['machine-40', machine40()], ['megabyte', megabyte(256 * 1024)]]) {
    const [shared, alone] = both(text, join(REPO, `bench-${name}.cluster.xml`));
    assert.ok(alone.length > 0, `${name}: findings to compare`);
    assert.deepEqual(shared, alone, name);
  }
});

test('nodes alike but for a size, a bus or a device: each its own layout; alike but for paths and serials: findings at their own ranges', () => {
  const node = (name: string, ram: string, extra: string, path: string, sn: string) => `  <node name="${name}" machine="q35" memory="${ram}" cpus="1">
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12"><root-port id="rp0" port="0" chassis="0" slot="2"><type3 id="t3" size="256M" path="${path}" lsa-path="${path}.lsa" sn="${sn}"/></root-port></host-bridge>
      <window size="4G" targets="cxl.1"/>
    </cxl>${extra}
  </node>
`;
  // a BAR that does not fit below 4 GiB on the node with 3.5 GiB of RAM only; a missing size on one path only
  const ivshmem = `
    <qemu>-object memory-backend-ram,id=big,size=1G -device ivshmem-plain,memdev=big,id=iv</qemu>`;
  const text = `<cluster name="alike">
${node('a', '1G', '', 'a.raw', '0x1')}${node('b', '1G', '', 'b.raw', '0x2')}${node('c', '3584M', ivshmem, 'c.raw', '0x3')}${node('d', '1G', ivshmem, 'd.raw', '0x4')}${node('e', '1G', '', 'e.raw', '0x4')}${node('f', '1G', ivshmem, 'f.raw', '0x6')}</cluster>
`;
  const [shared, alone] = both(text, '/nonexistent/alike.cluster.xml');
  assert.deepEqual(shared, alone);
  // the findings of each node lie inside its own element (d and f share a layout, c has its own)
  const elements = [...text.matchAll(/<node name="(\w)"[^]*?<\/node>/g)].map((m) => ({ name: m[1], start: m.index!, end: m.index! + m[0].length }));
  for (const d of shared) {
    const el = elements.find((e) => e.name === d.node)!;
    assert.ok(d.span.start >= el.start && d.span.end <= el.end, `${d.code} of ${d.node} at ${d.span.start}-${d.span.end}, outside ${el.start}-${el.end}`);
  }
  const overlaps = (n: string) => shared.filter((d) => d.code === 'cxl-bar-overlap' && d.node === n).map((d) => d.message);
  assert.equal(overlaps('f').length, 3);
  assert.deepEqual(overlaps('f'), overlaps('d'));
  assert.notDeepEqual(overlaps('c'), overlaps('d'), 'more RAM, other addresses');
});
