#!/usr/bin/env node
// Record real QEMU behaviour for the corpus.
// Usage: node test/corpus/record.mjs [file.qemu ...]
// Without arguments every test/corpus/qemu/*.qemu is recorded. For each
// NNN-name.qemu it writes NNN-name.expected.json next to it.

import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCorpusFile, runQemu, verifyRecord } from './run-qemu.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const corpusDir = join(here, 'qemu');

let targets = process.argv.slice(2).map((p) => resolve(p));
if (targets.length === 0) {
  targets = readdirSync(corpusDir).filter((f) => f.endsWith('.qemu')).sort().map((f) => join(corpusDir, f));
}

let failures = 0; // parse/run errors and verification problems
for (const file of targets) {
  const name = file.split('/').pop();
  try {
    const parsed = parseCorpusFile(readFileSync(file, 'utf8'));
    const rec = await runQemu(parsed.argv, parsed.files);
    const out = file.replace(/\.qemu$/, '.expected.json');
    writeFileSync(out, JSON.stringify(rec, null, 2) + '\n');
    const firstErr = rec.stderr.split('\n').find((l) => l.trim()) ?? '';
    console.log(`${name.padEnd(44)} started=${String(rec.started).padEnd(5)} exit=${rec.exitCode ?? rec.signal}  ${firstErr.slice(0, 110)}`);
    const problems = verifyRecord(parsed, rec);
    if (parsed.expect.length === 0 && rec.stderr.trim()) problems.push('clean case printed to stderr');
    for (const p of problems) { failures++; console.error(`  !! ${name}: ${p}`); }
  } catch (e) {
    failures++;
    console.error(`${name}: ${e.message}`);
  }
}
process.exit(failures ? 1 : 0);
