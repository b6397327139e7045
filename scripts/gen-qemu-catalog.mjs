#!/usr/bin/env node
// Records what a real QEMU binary knows: device types with their bus and
// properties, user-creatable object types with their properties, machine types
// and machine properties. The engine's unknown-type / unknown-property rules
// read the result, so they follow QEMU itself rather than a hand-written list.
//   node scripts/gen-qemu-catalog.mjs [qemu-binary] > server/src/engine/qemu/catalog-7.2.json
import { execFileSync } from 'node:child_process';

const qemu = process.argv[2] ?? 'qemu-system-x86_64';
const run = (...args) => {
  try {
    return execFileSync(qemu, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    return (e.stdout ?? '') + (e.stderr ?? '');
  }
};
const props = (text) => {
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^\s+([A-Za-z0-9_.\-]+)=<([^>]*)>/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
};
const version = run('--version').split('\n')[0];
const devices = {};
for (const line of run('-device', 'help').split('\n')) {
  const m = /^name "([^"]+)"(?:, bus ([^,]+))?/.exec(line);
  if (!m) continue;
  devices[m[1]] = { bus: m[2] ?? null, props: props(run('-device', `${m[1]},help`)) };
}
const objects = {};
for (const line of run('-object', 'help').split('\n')) {
  const m = /^  ([a-z0-9][a-z0-9_.\-]*)$/.exec(line);
  if (!m) continue;
  objects[m[1]] = { props: props(run('-object', `${m[1]},help`)) };
}
const machines = {};
for (const line of run('-machine', 'help').split('\n')) {
  const m = /^(\S+)\s+(.*)$/.exec(line);
  if (!m || m[1] === 'Supported') continue;
  const alias = /\(alias of ([^)]+)\)/.exec(m[2]);
  machines[m[1]] = { alias: alias ? alias[1] : null, desc: m[2].trim() };
}
// '-machine q35,help' lists class properties only; QMP qom-list-properties
// instantiates the type and so also lists instance properties such as cxl and nvdimm.
const qmpProps = (typename) => {
  const input = [
    '{"execute":"qmp_capabilities"}',
    JSON.stringify({ execute: 'qom-list-properties', arguments: { typename } }),
    '{"execute":"quit"}',
  ].join('\n') + '\n';
  const out = execFileSync(qemu, ['-M', 'none', '-display', 'none', '-nodefaults', '-qmp', 'stdio'], { input, encoding: 'utf8' });
  const res = {};
  for (const line of out.split('\n')) {
    if (!line.includes('"return": [')) continue;
    for (const p of JSON.parse(line).return) res[p.name] = p.type;
  }
  return res;
};
const machineProps = { q35: qmpProps(machines['q35'].alias + '-machine'), pc: qmpProps(machines['pc'].alias + '-machine') };
const globals = {};
for (const d of ['q35-pcihost', 'i440FX-pcihost']) {
  // Host bridges are not user-creatable; their properties come from -global driver.help.
  globals[d] = props(run('-device', `${d},help`));
}
process.stdout.write(JSON.stringify({ version, devices, objects, machines, machineProps, globals }, null, 1) + '\n');
