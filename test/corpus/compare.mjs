#!/usr/bin/env node
// Compare the records of two QEMU versions (no QEMU is run).
// Usage: node test/corpus/compare.mjs [A B]   (default: 7.2 10.0)
// Prints every configuration whose outcome differs: started vs refused, exit
// code, or QEMU's message (stderr), with both versions' first stderr lines,
// and the configurations whose expectations differ ('# expect@B:').

import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCorpusFile, recordPath, expectFor } from './run-qemu.mjs';

const corpusDir = join(dirname(fileURLToPath(import.meta.url)), 'qemu');
const [a = '7.2', b = '10.0'] = process.argv.slice(2);
const show = (rec) => `${rec.started ? 'starts ' : 'REFUSED'} exit=${rec.exitCode ?? rec.signal} ${rec.stderr.trim().split('\n').join(' | ') || '(no stderr)'}`;

let differ = 0;
let missing = 0;
for (const f of readdirSync(corpusDir).filter((f) => f.endsWith('.qemu')).sort()) {
  const file = join(corpusDir, f);
  const pa = recordPath(file, a);
  const pb = recordPath(file, b);
  if (!existsSync(pa) || !existsSync(pb)) { missing++; console.log(`${f}: no ${existsSync(pa) ? b : a} record`); continue; }
  const ra = JSON.parse(readFileSync(pa, 'utf8'));
  const rb = JSON.parse(readFileSync(pb, 'utf8'));
  const parsed = parseCorpusFile(readFileSync(file, 'utf8'));
  const ea = expectFor(parsed, a).join(' ') || 'clean';
  const eb = expectFor(parsed, b).join(' ') || 'clean';
  const kind = ra.started !== rb.started ? 'OUTCOME' : ra.exitCode !== rb.exitCode || ra.signal !== rb.signal ? 'EXIT' : ra.stderr !== rb.stderr ? 'MESSAGE' : ea !== eb ? 'EXPECT' : '';
  if (!kind) continue;
  differ++;
  console.log(`${f}  [${kind}]\n  ${a.padEnd(5)} ${show(ra)}\n  ${b.padEnd(5)} ${show(rb)}`);
  if (ea !== eb) console.log(`  expect ${a}: ${ea}; ${b}: ${eb}`);
}
console.log(`${differ} configuration(s) differ between QEMU ${a} and ${b}${missing ? `; ${missing} without both records` : ''}`);
