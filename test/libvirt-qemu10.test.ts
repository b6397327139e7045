/**
 * libvirt 9.0 and QEMU 10.0: libvirt passes -no-acpi for an x86 domain without
 * <features><acpi/>, and QEMU removed -no-acpi in 9.0 (rule libvirt-no-acpi-option).
 * Judged with the bundled 7.2 and 10.0 profiles, then for real: libvirt 9.0's
 * QEMU driver embedded in virsh (qemu:///embed, as nobody) with <emulator>
 * naming the QEMU 10.0 binary writes the argv, and QEMU runs it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { analyzeDocument, Diagnostic, NO_HOST } from '../server/src/engine/index';
import { bundledProfile, QemuProfile } from '../server/src/engine/qemu/profile';
import { hasQemu, hasQemu10, QEMU10 } from './support/cli';

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

// ---------------------------------------------------------------------------------------------- libvirt and QEMU

/**
 * virsh with libvirt's QEMU driver embedded (qemu:///embed?root=DIR), run as nobody when we are root, as
 * test/libvirt.test.ts does. QEMU 10.0 lives under root's home, which nobody cannot read: a copy of its
 * tree goes into DIR.
 */
function openEmbedded(): { dir: string; virsh: (cmd: string) => { status: number; stdout: string; stderr: string }; own: (f: string) => void; close: () => void } | string {
  if (spawnSync('virsh', ['--version']).error) return 'virsh not installed';
  if (!['/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so', '/usr/lib64/libvirt/connection-driver/libvirt_driver_qemu.so'].some(existsSync)) return 'libvirt QEMU driver not installed';
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-virsh10-'));
  let prefix: string[] = [];
  let uid: number | undefined;
  if (process.getuid?.() === 0) {
    const id = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' });
    if (id.status !== 0 || spawnSync('setpriv', ['--version']).error) {
      rmSync(dir, { recursive: true, force: true });
      return 'running as root without a nobody user or setpriv';
    }
    uid = Number(id.stdout.trim());
    chmodSync(dir, 0o755);
    chownSync(dir, uid, uid);
    prefix = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  }
  const own = (f: string) => {
    if (uid === undefined) return;
    spawnSync('chown', ['-R', `${uid}:${uid}`, f]);
  };
  const virsh = (cmd: string) => {
    const argv = [...prefix, 'env', `HOME=${dir}`, `XDG_RUNTIME_DIR=${dir}`, 'virsh', '-q', '-c', `qemu:///embed?root=${dir}/root`, cmd];
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
    return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
  };
  const close = () => {
    // QEMU capability probes still running out of DIR: ours, by their command line.
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, virsh, own, close };
}

/** libvirt's argv as a QEMU command line we can run (monitor socket, secret and sandbox dropped); QEMU's error or '' if it starts. */
function runArgv(argv: string, qemu: string): string {
  const at = argv.search(/\S*qemu-system-x86_64 /);
  let line = argv.slice(argv.indexOf(' ', at) + 1).trim();
  line = line
    .replace(/-object '\{"qom-type":"secret"[^']*' /, '')
    .replace(/-chardev socket,id=charmonitor\S* /, '')
    .replace(/-mon chardev=charmonitor,id=monitor,mode=control /, '')
    .replace(/-sandbox \S+ ?/, '');
  const r = spawnSync('bash', ['-c', `exec timeout 3 ${qemu} ${line} -monitor none`], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 124 ? '' : (r.stderr || `exit ${r.status}`).trim();
}

const lv = openEmbedded();
const skip = typeof lv === 'string' ? lv : !hasQemu10() ? 'QEMU 10.0 not installed (scripts/qemu10-setup.sh)' : false;

test('libvirt 9.0 with <emulator> QEMU 10.0 passes -no-acpi; QEMU 10.0 refuses it with the words we quote, QEMU 7.2 starts', { skip }, () => {
  const l = lv as Exclude<typeof lv, string>;
  try {
    // The QEMU 10.0 tree (a wrapper script and its root/), copied where nobody can run it.
    const tree = dirname(dirname(QEMU10));
    const copy = join(l.dir, 'qemu-10.0');
    cpSync(tree, copy, { recursive: true, verbatimSymlinks: true });
    const emulator = join(copy, 'bin', 'qemu-system-x86_64');
    const runs: [string, string, QemuProfile][] = [[emulator, emulator, Q100]];
    if (hasQemu()) runs.push(['/usr/bin/qemu-system-x86_64', '/usr/bin/qemu-system-x86_64', Q72]);
    for (const [emu, qemu, profile] of runs) {
      const text = domain({ emulator: emu });
      const file = join(l.dir, `dom-${profile.version}.xml`);
      writeFileSync(file, text);
      l.own(l.dir);
      const r = l.virsh(`define ${file}; domxml-to-native qemu-argv --domain noacpi; undefine noacpi`);
      assert.ok(r.stdout.includes(`${emu} `), `libvirt 9.0 with <emulator>${emu}: ${r.stderr}`);
      assert.match(r.stdout, / -no-acpi /, r.stdout);
      const err = runArgv(r.stdout, qemu);
      const ours = diags(text, profile).filter((d) => d.code === CODE);
      if (profile === Q100) {
        assert.match(r.stdout, /-machine pc-i440fx-10\.0/, 'libvirt probed QEMU 10.0 itself');
        assert.equal(err, QEMU10_WORDS);
        assert.equal(ours.length, 1);
        assert.ok(ours[0].message.includes(`"${err}"`), ours[0].message);
      } else {
        assert.equal(err, '', `QEMU 7.2 starts with -no-acpi: ${err}`);
        assert.deepEqual(ours, []);
      }
      // With <acpi/>: libvirt passes nothing, QEMU 10.0 starts, and we say nothing.
      const withAcpi = text.replace('</os>\n', '</os>\n  <features>\n    <acpi/>\n  </features>\n');
      writeFileSync(file, withAcpi);
      l.own(l.dir);
      const r2 = l.virsh(`define ${file}; domxml-to-native qemu-argv --domain noacpi; undefine noacpi`);
      assert.ok(r2.stdout.includes(`${emu} `) && !/ -no-acpi /.test(r2.stdout), r2.stdout + r2.stderr);
      assert.equal(runArgv(r2.stdout, qemu), '');
      assert.deepEqual(diags(withAcpi, profile).filter((d) => d.code === CODE), []);
    }
  } finally {
    l.close();
  }
});
