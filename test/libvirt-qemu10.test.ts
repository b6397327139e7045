/**
 * libvirt 9.0 and QEMU 10.0: libvirt passes -no-acpi for an x86 domain without
 * <features><acpi/>, and QEMU removed -no-acpi in 9.0 (rule libvirt-no-acpi-option).
 * Judged here with the bundled 7.2 and 10.0 profiles; for real in the libvirt
 * corpus (see the end of this file).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeDocument, Diagnostic, NO_HOST } from '../server/src/engine/index';
import { bundledProfile, QemuProfile } from '../server/src/engine/qemu/profile';

const Q72 = bundledProfile('7.2');
const Q100 = bundledProfile('10.0');
const CODE = 'libvirt-no-acpi-option';
const QEMU10_WORDS = 'qemu-system-x86_64: -no-acpi: invalid option';

function diags(text: string, qemu: QemuProfile): Diagnostic[] {
  return analyzeDocument(text, '/work/x/dom.xml', NO_HOST, 'libvirt', { qemu, incremental: false }).diagnostics;
}

function applyFix(text: string, d: Diagnostic): string {
  const edits = [...d.fixes![0].edits].sort((a, b) => b.span.start - a.span.start);
  let out = text;
  for (const e of edits) out = out.slice(0, e.span.start) + e.newText + out.slice(e.span.end);
  return out;
}

const domain = (opts: { features?: string; devices?: string; arch?: string; machine?: string; emulator?: string } = {}) => `<domain type='qemu'>
  <name>noacpi</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='${opts.arch ?? 'x86_64'}' machine='${opts.machine ?? 'pc'}'>hvm</type>
  </os>
${opts.features ?? ''}  <devices>
${opts.emulator ? `    <emulator>${opts.emulator}</emulator>\n` : ''}${opts.devices ?? ''}  </devices>
</domain>
`;

test('libvirt-no-acpi-option: silent for QEMU 7.2, an error for QEMU 10.0 on <type> (no <features>), fixed by adding <features><acpi/>', () => {
  const text = domain();
  assert.deepEqual(diags(text, Q72).filter((d) => d.code === CODE), []);
  const got = diags(text, Q100).filter((d) => d.code === CODE);
  assert.equal(got.length, 1, diags(text, Q100).map((d) => d.code).join(' '));
  const d = got[0];
  assert.equal(d.severity, 'error');
  assert.equal(text.slice(d.span.start, d.span.end), 'type');
  assert.ok(d.message.includes(`"${QEMU10_WORDS}"`), d.message);
  assert.match(d.message, /removed that option in 9\.0/);
  assert.match(d.message, /QEMU 10\.0\.2/);
  const fixed = applyFix(text, d);
  assert.match(fixed, /<\/os>\n {2}<features>\n {4}<acpi\/>\n {2}<\/features>/);
  assert.deepEqual(diags(fixed, Q100).filter((d) => d.code === CODE), []);
});

test('libvirt-no-acpi-option: on <features> without <acpi/>; the fix adds <acpi/> inside it', () => {
  const text = domain({ features: '  <features>\n    <pae/>\n  </features>\n' });
  const got = diags(text, Q100).filter((d) => d.code === CODE);
  assert.equal(got.length, 1);
  assert.equal(text.slice(got[0].span.start, got[0].span.end), 'features');
  const fixed = applyFix(text, got[0]);
  assert.match(fixed, /<features>\n {4}<acpi\/>\n {4}<pae\/>/);
  assert.deepEqual(diags(fixed, Q100).filter((d) => d.code === CODE), []);
  assert.deepEqual(diags(fixed, Q72).filter((d) => d.code === CODE), []);
});

test('libvirt-no-acpi-option: not with <acpi/>, not on q35 with <acpi/>; with a memory device, each QEMU gets the one error it gives (10.0: -no-acpi; 7.2: the device)', () => {
  assert.deepEqual(diags(domain({ features: '  <features>\n    <acpi/>\n  </features>\n' }), Q100).filter((d) => d.code === CODE), []);
  assert.deepEqual(diags(domain({ machine: 'q35', features: '  <features><acpi/></features>\n' }), Q100).filter((d) => d.code === CODE), []);
  assert.equal(diags(domain({ machine: 'q35' }), Q100).filter((d) => d.code === CODE).length, 1);
  const nv = domain({
    devices: "    <memory model='dimm'>\n      <target>\n        <size unit='MiB'>128</size>\n        <node>0</node>\n      </target>\n    </memory>\n",
  }).replace('<memory unit=\'MiB\'>128</memory>', "<maxMemory slots='2' unit='MiB'>1024</maxMemory>\n  <memory unit='MiB'>256</memory>").replace('</os>\n', "</os>\n  <cpu>\n    <numa>\n      <cell id='0' cpus='0' memory='128' unit='MiB'/>\n    </numa>\n  </cpu>\n");
  // QEMU 10.0 stops at -no-acpi before it sees the device (test/corpus/libvirt/008-nvdimm-no-acpi.expected-10.0.json).
  const all = diags(nv, Q100);
  assert.ok(!all.some((d) => d.code === 'libvirt-memory-device-acpi'), all.map((d) => `${d.code}: ${d.message}`).join('\n'));
  assert.match(all.find((d) => d.code === CODE)?.message ?? '', /-no-acpi: invalid option" \(its <memory model='dimm'> would need ACPI too\)/);
  // QEMU 7.2 takes -no-acpi and refuses the device (…008-nvdimm-no-acpi.expected.json).
  const old = diags(nv, Q72);
  assert.ok(old.some((d) => d.code === 'libvirt-memory-device-acpi' && d.message.includes('memory hotplug is not enabled')), old.map((d) => d.code).join(' '));
  assert.ok(!old.some((d) => d.code === CODE));
});

// libvirt 9.0 and QEMU 10.0 for real: test/corpus/libvirt records every domain started by a private libvirtd with
// <emulator> QEMU 10.0 (014-pc-no-acpi: "-no-acpi: invalid option"; 011-unit-gib, with <acpi/>, starts), and
// test/libvirt-corpus.test.ts judges each against its record, offline and with check --libvirt.
