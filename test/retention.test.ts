/**
 * A dropped analysis dies young. V8 (Node 20) keeps alive, through young
 * collections, whatever an old WeakMap's values hold and whatever a getter
 * closure given to defineProperty holds; an analysis kept that way was copied
 * at the next scavenge, and most of the engine's time in garbage collection
 * went there (engine/index.ts, VIEW). Measured in a child process of its own
 * with --expose-gc and a young generation large enough that no collection
 * runs between analyses: the heap after one young collection, with one and
 * with five analyses made and dropped since the last full one. A getter
 * closure holding 1 MB shows that the measure sees such retention here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const OUT = join(__dirname, '..');

/** The heap kept by a young collection per dropped analysis (bytes), from a child that runs `code` to make one. */
function keptPerDropped(setup: string, make: string): number {
  const script = `
${setup}
let last;
const run = () => { last = (${make})(); };
for (let i = 0; i < 30; i++) run();
const kept = (k) => {
  let sum = 0;
  for (let rep = 0; rep < 5; rep++) {
    gc(); gc();
    const base = process.memoryUsage().heapUsed;
    for (let i = 0; i < k; i++) run();
    gc({ type: 'minor' });
    sum += process.memoryUsage().heapUsed - base;
  }
  return sum / 5;
};
const one = kept(1);
const five = kept(5);
process.stdout.write(JSON.stringify((five - one) / 4));
`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--min-semi-space-size=32', '--max-semi-space-size=32', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout);
}

test('a dropped analysis of the 40-node cluster is not kept by the next young collection (and the measure sees a getter closure that is)', () => {
  const control = keptPerDropped(
    '',
    `() => { const big = Array.from({ length: 20000 }, (_, i) => ({ i })); const r = {}; Object.defineProperty(r, 'n', { enumerable: true, configurable: true, get: () => big.length }); return r; }`,
  );
  // (20000 small objects and their array: about 0.6 MB, all of it kept)
  assert.ok(control > 400_000, `the measure sees the getter closure's 20000 objects kept: ${control} bytes per dropped object`);
  const analysis = keptPerDropped(
    `const { analyzeDocument } = require(${JSON.stringify(join(OUT, 'server/src/engine/index.js'))});
const { machine40 } = require(${JSON.stringify(join(OUT, 'test/support/topology-gen.js'))});
const text = machine40();`,
    `() => analyzeDocument(text, '/nonexistent/bench-machine-40.cluster.xml', undefined, 'topology', { information: true, incremental: false })`,
  );
  // A whole analysis is 0.7–0.9 MB (it was all kept: 0.84 MB per dropped analysis); 0.11–0.16 MB was left while summaries,
  // schema findings and dedupe keys were kept in WeakMaps, and 0.03–0.07 MB since they are kept on their objects (engine/kept.ts).
  assert.ok(analysis < 400_000, `a dropped 40-node analysis still alive after a young collection: ${(analysis / 1e6).toFixed(2)} MB each`);
});
