#!/usr/bin/env node
// Record real QEMU behaviour for the corpus.
// Usage: node test/corpus/record.mjs [--qemu BIN | --all] [file.qemu ...]
//   --qemu BIN  record under BIN (default: $MEMFABRIC_QEMU, else qemu-system-x86_64)
//   --all       record under every QEMU of QEMU_VERSIONS that is installed
//               (7.2 and 10.0; run-qemu.mjs corpusQemus()), two at a time
// Without files every test/corpus/qemu/*.qemu is recorded. The record's name
// follows the version BIN reports: NNN-name.expected.json for QEMU 7.2,
// NNN-name.expected-<major.minor>.json for any other (e.g. -10.0).

import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCorpusFile, runQemu, verifyRecord, expectFor, qemuVersion, versionKey, recordPath, corpusQemus } from './run-qemu.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const corpusDir = join(here, 'qemu');

const args = process.argv.slice(2);
let bins = [];
let all = false;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--qemu') bins.push(args[++i]);
  else if (args[i] === '--all') all = true;
  else if (args[i].startsWith('--')) { console.error(`unknown option ${args[i]}`); process.exit(2); }
  else files.push(resolve(args[i]));
}
if (all) {
  const qemus = corpusQemus();
  for (const q of qemus.filter((q) => !q.present)) console.error(`QEMU ${q.version}: not installed (${q.bin}${q.actual ? ` is ${q.actual}` : ''}), skipped`);
  bins = qemus.filter((q) => q.present).map((q) => q.bin);
}
if (bins.length === 0) bins = [process.env.MEMFABRIC_QEMU?.trim() || 'qemu-system-x86_64'];

let targets = files;
if (targets.length === 0) {
  targets = readdirSync(corpusDir).filter((f) => f.endsWith('.qemu')).sort().map((f) => join(corpusDir, f));
}

const qemus = bins.map((bin) => ({ bin, version: versionKey(qemuVersion(bin)) }));
if (new Set(qemus.map((q) => q.version)).size !== qemus.length) {
  console.error('two binaries of the same QEMU version'); process.exit(2);
}

let failures = 0; // parse/run errors and verification problems
async function recordOne(file, { bin, version }) {
  const name = file.split('/').pop();
  try {
    const parsed = parseCorpusFile(readFileSync(file, 'utf8'));
    const rec = await runQemu(parsed.argv, parsed.files, { bin });
    writeFileSync(recordPath(file, version), JSON.stringify(rec, null, 2) + '\n');
    const firstErr = rec.stderr.split('\n').find((l) => l.trim()) ?? '';
    const lines = [`${version.padEnd(5)} ${name.padEnd(44)} started=${String(rec.started).padEnd(5)} exit=${rec.exitCode ?? rec.signal}  ${firstErr.slice(0, 110)}`];
    const problems = verifyRecord(parsed, rec, version);
    if (expectFor(parsed, version).length === 0 && rec.stderr.trim()) problems.push('clean case printed to stderr');
    for (const p of problems) { failures++; lines.push(`  !! ${version} ${name}: ${p}`); }
    return lines;
  } catch (e) {
    failures++;
    return [`${version} ${name}: ${e.message}`];
  }
}

// One file at a time, its versions in parallel (at most two QEMUs at once).
for (const file of targets) {
  for (let i = 0; i < qemus.length; i += 2) {
    const out = await Promise.all(qemus.slice(i, i + 2).map((q) => recordOne(file, q)));
    for (const lines of out) for (const l of lines) (l.startsWith('  !!') ? console.error : console.log)(l);
  }
}
process.exit(failures ? 1 : 0);
