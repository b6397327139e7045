#!/usr/bin/env node
// Records what libvirt 9.0 (a private libvirtd: scripts/libvirtd-private.sh) and
// the QEMU it runs do with each domain here: define, its command line
// (domxml-to-native), and a real start (then destroy and undefine). Writes
// NNN.expected.json beside NNN.xml (with --qemu10: the domain's <emulator> is
// QEMU 10.0, scripts/qemu10-setup.sh's, and NNN.expected-10.0.json). @DIR@ in
// a domain is a scratch directory.
//   node test/corpus/libvirt/record.mjs [--qemu10] [NNN...]     (after `npx tsc -p .`, as root)
import { readdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { PrivateLibvirtd } = require(join(here, '..', '..', '..', 'out', 'test', 'support', 'libvirtd.js'));
const { runDomain } = require(join(here, '..', '..', '..', 'out', 'test', 'support', 'libvirt-corpus.js'));
const { QEMU10 } = require(join(here, '..', '..', '..', 'out', 'test', 'support', 'cli.js'));

const q10 = process.argv.includes('--qemu10');
const only = process.argv.slice(2).filter((a) => a !== '--qemu10');
const d = await PrivateLibvirtd.start();
if (typeof d === 'string') {
  console.error(`record: ${d}`);
  process.exit(1);
}
try {
  for (const f of readdirSync(here).filter((x) => /^\d{3}-.*\.xml$/.test(x)).sort()) {
    if (only.length && !only.some((o) => f.startsWith(o))) continue;
    const outcome = runDomain(d, join(here, f), q10 ? QEMU10 : undefined);
    writeFileSync(join(here, f.replace(/\.xml$/, q10 ? '.expected-10.0.json' : '.expected.json')), JSON.stringify(outcome, null, 2) + '\n');
    console.log(`${f}: define ${outcome.define === 'ok' ? 'ok' : 'refused'}, argv ${outcome.argv === 'ok' ? 'ok' : 'refused'}, start ${outcome.start}`);
  }
} finally {
  d.stop();
}
