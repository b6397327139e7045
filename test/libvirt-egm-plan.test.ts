/**
 * EGM argv as the libvirt EGM RFC shows it (seeds/libvirt-egm-rfc.txt): the domain's
 * <acpiEgmMemory> becomes
 *   -object memory-backend-file,id=m0,mem-path=/dev/egm0,size=32G,share=on,prealloc=on
 *   -object acpi-egm-memory,id=egm0,pci-dev=ua-hostdev0,node=0
 * in `memfabric plan`, in that order; the findings stay those of the XML.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeDocument, NO_HOST } from '../server/src/engine/index';
import { REPO, runCli } from './support/cli';

const SEED = join(REPO, '..', 'shared', 'seeds', 'libvirt-egm-rfc.txt');
const SEED_ALT = '/work/shared/seeds/libvirt-egm-rfc.txt';
const FIXTURES = join(REPO, 'test', 'fixtures', 'libvirt');

/** The RFC's argv words: the lines after "results in appropriate QEMU command line options:" up to the blank line. */
function rfcArgv(): string[] {
  const text = readFileSync(existsSync(SEED) ? SEED : SEED_ALT, 'utf8');
  const at = text.indexOf('QEMU command line options:');
  assert.ok(at >= 0, 'the RFC shows its argv');
  const block = text.slice(text.indexOf('\n', at) + 1).split(/\n\s*\n/)[0];
  return block.split(/\s+/).filter(Boolean);
}

const seedSkip = existsSync(SEED) || existsSync(SEED_ALT) ? false : 'seeds/libvirt-egm-rfc.txt not here';

test('plan: egm-rfc.xml emits the RFC\'s EGM argv lines, in the RFC\'s order', { skip: seedSkip }, () => {
  const want = rfcArgv();
  assert.deepEqual(want.filter((w) => w === '-object').length, 2, want.join(' '));
  assert.equal(want.length, 4, want.join(' '));
  const r = runCli(['plan', '--format', 'json', join(FIXTURES, 'egm-rfc.xml')]);
  assert.equal(r.status, 0, r.stderr);
  const argv: string[] = JSON.parse(r.stdout).nodes[0].argv;
  assert.equal(argv[0], 'qemu-system-aarch64');
  const at = (opt: string, value: string) => argv.findIndex((w, i) => w === opt && argv[i + 1] === value);
  const backend = at(want[0], want[1]);
  const egm = at(want[2], want[3]);
  assert.ok(backend > 0, `no "${want[0]} ${want[1]}" in ${argv.join(' ')}`);
  assert.ok(egm > 0, `no "${want[2]} ${want[3]}" in ${argv.join(' ')}`);
  assert.ok(backend < egm, argv.join(' '));
  // The EGM backend is NUMA node 0's memory; the hostdev the RFC names exists before the acpi-egm-memory object.
  assert.ok(argv.includes('node,nodeid=0,cpus=0-3,memdev=m0'), argv.join(' '));
  assert.ok(argv.indexOf('vfio-pci,host=0000:01:00.0,id=ua-hostdev0') < egm, argv.join(' '));
  // The argv form shows the same lines.
  const a = runCli(['plan', '--format', 'argv', join(FIXTURES, 'egm-rfc.xml')]);
  assert.ok(a.stdout.includes(`${want[0]} ${want[1]}`) && a.stdout.includes(`${want[2]} ${want[3]}`), a.stdout);
});

test('EGM: the emitted acpi-egm-memory object points into the XML; the findings are the XML\'s (egm-unsupported, no unknown-object-type, undefined-id once)', () => {
  const text = readFileSync(join(FIXTURES, 'egm-rfc.xml'), 'utf8');
  const r = analyzeDocument(text, join(FIXTURES, 'egm-rfc.xml'), NO_HOST, 'libvirt', { incremental: false });
  assert.deepEqual(r.diagnostics.map((d) => d.code), ['egm-unsupported']);
  const n = r.nodes[0];
  assert.equal(n.egm.length, 1);
  const obj = n.objects.find((o) => o.qomType === 'acpi-egm-memory')!;
  assert.ok(obj);
  const pci = obj.props.find((p) => p.key === 'pci-dev')!;
  assert.equal(text.slice(pci.value.span().start, pci.value.span().end), 'ua-hostdev0');
  assert.equal(text.slice(obj.id!.span().start, obj.id!.span().end), 'egm0');
  const b = n.backends.get('m0')!;
  assert.equal(b.memPath?.text, '/dev/egm0');
  assert.equal(b.share?.value.text, 'on');
  assert.equal(b.prealloc?.value.text, 'on');
  for (const [f, code] of [['egm-rfc-wrong-pcidev.xml', 'undefined-id'], ['egm-rfc-no-numa-node.xml', 'undefined-id']] as const) {
    const t = readFileSync(join(FIXTURES, f), 'utf8');
    const d = analyzeDocument(t, join(FIXTURES, f), NO_HOST, 'libvirt', { incremental: false }).diagnostics;
    assert.equal(d.filter((x) => x.code === code).length, 1, `${f}: ${d.map((x) => `${x.code}: ${x.message}`).join('\n')}`);
    assert.ok(!d.some((x) => x.code === 'unknown-object-type'), f);
  }
});
