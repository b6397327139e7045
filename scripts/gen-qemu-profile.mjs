#!/usr/bin/env node
// Writes a bundled QEMU profile with the very code that reads a user's QEMU
// (server/src/host/qemu-profile.ts, compiled: run `npx tsc -p .` first):
//   node scripts/gen-qemu-profile.mjs /usr/bin/qemu-system-x86_64                 -> server/src/engine/qemu/profile-7.2.json
//   node scripts/gen-qemu-profile.mjs ~/.cache/memfabric/qemu-10.0/bin/qemu-system-x86_64  -> profile-10.0.json
//   node scripts/gen-qemu-profile.mjs /usr/bin/qemu-system-aarch64                -> profile-aarch64-7.2.json
// (x86_64 profiles are named by version alone, the others by architecture and version.)
// Stored as the engine loads them (StoredProfile in server/src/engine/qemu/profile.ts:
// a device with the properties of an earlier one names it). To store a bundled file
// again in the current form without its binary, with the same content:
//   node scripts/gen-qemu-profile.mjs --restore server/src/engine/qemu/profile-10.0.json
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { readProfile } = require(join(repo, 'out/server/src/host/qemu-profile.js'));
const { shortVersion, loadProfile, storeProfile } = require(join(repo, 'out/server/src/engine/qemu/profile.js'));

const restore = process.argv[2] === '--restore';
const bin = process.argv[restore ? 3 : 2] ?? 'qemu-system-x86_64';
const p = storeProfile(restore ? loadProfile(JSON.parse(readFileSync(bin, 'utf8'))) : await readProfile(bin));
delete p.origin; // bundled copies get { kind: 'bundled' } when loaded
const out = restore ? bin : join(repo, 'server/src/engine/qemu', `profile-${p.arch === 'x86_64' ? '' : `${p.arch}-`}${shortVersion(p.version)}.json`);
// One type per line: diffs between two recordings show what changed.
const lines = ['{'];
const keys = Object.keys(p);
keys.forEach((k, i) => {
  const v = p[k];
  const comma = i < keys.length - 1 ? ',' : '';
  if (['devices', 'objects', 'machines', 'machineProps', 'globals'].includes(k)) {
    const ks = Object.keys(v);
    lines.push(` ${JSON.stringify(k)}: {`);
    ks.forEach((kk, j) => lines.push(`  ${JSON.stringify(kk)}: ${JSON.stringify(v[kk])}${j < ks.length - 1 ? ',' : ''}`));
    lines.push(` }${comma}`);
  } else if (k === 'commands') {
    // one QMP command per line, like the types
    lines.push(` ${JSON.stringify(k)}: [`);
    v.forEach((c, j) => lines.push(`  ${JSON.stringify(c)}${j < v.length - 1 ? ',' : ''}`));
    lines.push(` ]${comma}`);
  } else lines.push(` ${JSON.stringify(k)}: ${JSON.stringify(v)}${comma}`);
});
lines.push('}');
writeFileSync(out, lines.join('\n') + '\n');
console.log(`${out}: QEMU ${p.version} (${p.arch}), ${p.firmware ? `${p.firmware.name} ${p.firmware.version}` : 'no firmware line'}, ${Object.keys(p.devices).length} devices, ${Object.keys(p.objects).length} objects, ${Object.keys(p.machines).length} machines, ${p.commands?.length ?? 'no'} QMP commands`);
console.log(`(its head, ${JSON.stringify({ arch: p.arch, version: p.version, versionLine: p.versionLine, firmware: p.firmware })}, is also in server/src/engine/qemu/profile.ts BUNDLED: test/qemu-profile.test.ts checks they agree)`);
