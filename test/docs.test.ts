/** Documentation that is generated from the code must match it; every rule file is registered under its own name. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importEsm } from './support/esm';
import { REPO } from './support/cli';
import { RULES } from '../server/src/engine/rules/index';

test('docs/diagnostics.md is up to date (node scripts/gen-diagnostics-doc.mjs)', async () => {
  const { diagnosticsDoc } = await importEsm(join(REPO, 'scripts', 'gen-diagnostics-doc.mjs'));
  assert.equal(readFileSync(join(REPO, 'docs', 'diagnostics.md'), 'utf8'), diagnosticsDoc());
});

test('every rule file is registered, and its code is its file name', () => {
  const dir = join(REPO, 'server', 'src', 'engine', 'rules');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && !['rule.ts', 'util.ts', 'paths.ts', 'index.ts'].includes(f)).map((f) => f.slice(0, -3)).sort();
  assert.deepEqual(RULES.map((r) => r.code).sort(), files);
  for (const r of RULES) assert.ok(r.summary.length > 20, r.code);
});

test('every element of the topology schema is documented in docs/topology.md', async () => {
  const { SCHEMA } = await import('../server/src/engine/topology/schema');
  const doc = readFileSync(join(REPO, 'docs', 'topology.md'), 'utf8');
  for (const [el, spec] of Object.entries(SCHEMA)) {
    assert.ok(doc.includes(`<${el}`), `<${el}> missing from docs/topology.md`);
    for (const a of Object.keys(spec.attrs.shape)) if (a !== 'xmlns') assert.ok(new RegExp(`\\b${a}\\b`).test(doc), `${el}@${a} missing`);
  }
});
