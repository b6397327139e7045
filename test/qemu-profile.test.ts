/**
 * QEMU profiles: read from the real binaries (QEMU 7.2 on PATH, QEMU 10.0
 * unpacked by scripts/qemu10-setup.sh), the bundled ones made by the same
 * code, cached per binary, and what the engine does with each: the rules,
 * completion and the CLI judge for the QEMU the user runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { QemuInfo, QemuRequest } from '../server/src/lsp/protocol';
import { ProfileError, forgetProfiles, readProfile, userProfile } from '../server/src/host/qemu-profile';
import { BUNDLED, QemuProfile, StoredProfile, bundledProfile, layoutQemu, loadProfile, profileFor, qemuAtLeast, storeProfile } from '../server/src/engine/qemu/profile';
import { versionWarning } from '../server/src/engine/layout/report';
import { computeLayout } from '../server/src/engine/layout/index';
import { analyzeDocument, NO_HOST } from '../server/src/engine/index';
import { complete } from '../server/src/engine/editor/completion';
import { hover } from '../server/src/engine/editor/hover';
import { EditorAnalysis } from '../server/src/engine/editor/analysis';
import { BIN, QEMU10, REPO, hasQemu, hasQemu10, runCli } from './support/cli';

const bundled72 = BUNDLED.find((p) => p.version.startsWith('7.2.'))!;
const bundled100 = BUNDLED.find((p) => p.version.startsWith('10.0.'))!;

/** Equal as data, the origin aside. */
function sameProfile(a: QemuProfile, b: QemuProfile) {
  const strip = ({ origin: _o, ...rest }: QemuProfile) => rest;
  assert.deepEqual(JSON.parse(JSON.stringify(strip(a))), JSON.parse(JSON.stringify(strip(b))));
}

test('the bundled QEMU 7.2 profile is what the installed 7.2 binary says of itself, read by the same code', { skip: !hasQemu() && 'no qemu-system-x86_64' }, async () => {
  const live = await readProfile('qemu-system-x86_64');
  assert.match(live.version, /^7\.2\.\d+$/);
  assert.deepEqual(live.firmware && { name: live.firmware.name, version: live.firmware.version }, { name: 'SeaBIOS', version: '1.16.2' });
  assert.equal(live.origin.kind, 'binary');
  sameProfile(live, bundled72);
  // Its 130-odd CPU models have two property lists between them: read, they share them; stored
  // (as the bundled files and the cache are), each list is written once; loaded again, the same profile.
  const cpus = Object.keys(live.devices).filter((n) => n.endsWith('-x86_64-cpu'));
  assert.ok(cpus.length > 100, `${cpus.length} CPU models`);
  assert.ok(new Set(cpus.map((n) => live.devices[n].props)).size <= 2, 'the CPU models share their property lists');
  const stored = storeProfile(live);
  assert.ok(cpus.filter((n) => 'sameProps' in stored.devices[n]).length >= cpus.length - 2);
  assert.ok(JSON.stringify(stored).length < 400_000, `stored: ${JSON.stringify(stored).length} bytes`);
  sameProfile(loadProfile(JSON.parse(JSON.stringify(stored)) as StoredProfile), live);
  // What the rules ask: 7.2's cxl-type3 has memdev and lsa only; its defaults are QEMU's.
  assert.ok(live.devices['cxl-type3'].props.memdev);
  assert.equal(live.devices['cxl-type3'].props['volatile-memdev'], undefined);
  assert.equal(live.globals['q35-pcihost']['pci-hole64-size'].default, 34359738368);
  assert.equal(live.devices['cxl-type3'].props.sn.default, '18446744073709551615');
  // Its QMP commands (query-commands): the common ones, and no CXL command at all (qapi/cxl.json came in 8.0).
  for (const c of ['query-commands', 'qom-list', 'device_add', 'quit']) assert.ok(live.commands?.includes(c), c);
  assert.deepEqual(live.commands?.filter((c) => c.startsWith('cxl-')), []);
  assert.deepEqual(live.commands, [...live.commands!].sort());
});

test('the bundled QEMU 10.0 profile is what the 10.0 binary says of itself, SeaBIOS 1.16.3 included', { skip: !hasQemu10() && `no QEMU 10.0 at ${QEMU10} (scripts/qemu10-setup.sh)` }, async () => {
  const live = await readProfile(QEMU10);
  assert.match(live.version, /^10\.0\.\d+$/);
  assert.equal(live.firmware?.version, '1.16.3');
  sameProfile(live, bundled100);
  for (const p of ['volatile-memdev', 'persistent-memdev', 'num-dc-regions', 'volatile-dc-memdev']) assert.ok(live.devices['cxl-type3'].props[p], p);
  assert.ok(live.devices['cxl-switch-mailbox-cci'], 'cxl-switch-mailbox-cci (8.2+)');
  assert.ok(live.machines['pc-q35-10.0']);
  // The CXL QMP commands (8.0, 8.1, 9.1): all eight.
  assert.deepEqual(live.commands?.filter((c) => c.startsWith('cxl-')), [
    'cxl-add-dynamic-capacity', 'cxl-inject-correctable-error', 'cxl-inject-dram-event', 'cxl-inject-general-media-event',
    'cxl-inject-memory-module-event', 'cxl-inject-poison', 'cxl-inject-uncorrectable-errors', 'cxl-release-dynamic-capacity',
  ]);
});

test('a binary that is missing, not QEMU, or hangs gets a clear message and leaves no process', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-profile-'));
  try {
    await assert.rejects(readProfile(join(dir, 'nope')), (e: Error) => e instanceof ProfileError && /is not an executable file/.test(e.message));
    await assert.rejects(readProfile('no-such-qemu-anywhere'), /not found in PATH/);
    const fake = join(dir, 'fake-qemu');
    writeFileSync(fake, '#!/bin/sh\necho "hello"\n');
    chmodSync(fake, 0o755);
    await assert.rejects(readProfile(fake), /is not QEMU: --version printed "hello"/);
    const hang = join(dir, 'hanging-qemu');
    // A child of the script must end too (the whole process group is killed).
    const mark = `301.${process.pid}`;
    writeFileSync(hang, `#!/bin/sh\nsleep ${mark}\n`);
    chmodSync(hang, 0o755);
    await assert.rejects(readProfile(hang, 800), /did not answer within 800 ms/);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(spawnSync('pgrep', ['-f', 'hanging-qemu']).status, 1, 'the hanging binary is gone');
    assert.equal(spawnSync('pgrep', ['-f', `sleep ${mark}`]).status, 1, 'and so is what it started');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('userProfile: read once per binary, cached on disk by path, size, mtime and version; a bundled one where there is no QEMU', { skip: !hasQemu() && 'no qemu-system-x86_64' }, async () => {
  const cache = mkdtempSync(join(tmpdir(), 'memfabric-profile-cache-'));
  try {
    const env = { ...process.env, XDG_CACHE_HOME: cache };
    forgetProfiles();
    const first = await userProfile(env);
    assert.equal(first.note, undefined);
    assert.match(first.profile.version, /^7\.2\./);
    const files = readdirSync(join(cache, 'memfabric', 'profiles'));
    assert.equal(files.length, 1);
    // The cached copy is what a later process gets: mark it and read again.
    const file = join(cache, 'memfabric', 'profiles', files[0]);
    const cached = JSON.parse(readFileSync(file, 'utf8'));
    // stored with each property list once: both CPU models name the first model with theirs
    assert.ok(cached.devices['qemu64-x86_64-cpu'].sameProps, 'stored with each property list once');
    assert.equal(cached.devices['qemu64-x86_64-cpu'].sameProps, cached.devices['qemu32-x86_64-cpu'].sameProps);
    cached.machines['marked-by-test'] = { alias: null, desc: 'from the cache' };
    writeFileSync(file, JSON.stringify(cached));
    forgetProfiles();
    const again = (await userProfile(env)).profile;
    assert.ok(again.machines['marked-by-test']);
    assert.equal(again.devices['qemu64-x86_64-cpu'].props, again.devices['qemu32-x86_64-cpu'].props, 'loaded from the cache, the CPU models share their property list');
    sameProfile(again, { ...first.profile, machines: { ...first.profile.machines, 'marked-by-test': { alias: null, desc: 'from the cache' } } });

    // Another binary (a wrapper: another path, size and mtime) is another entry.
    const bin = join(cache, 'qemu-wrapper');
    writeFileSync(bin, '#!/bin/sh\nexec qemu-system-x86_64 "$@"\n');
    chmodSync(bin, 0o755);
    forgetProfiles();
    const copy = await userProfile({ ...env, MEMFABRIC_QEMU: bin });
    assert.equal(copy.note, undefined);
    assert.equal(copy.profile.machines['marked-by-test'], undefined);
    assert.equal(readdirSync(join(cache, 'memfabric', 'profiles')).length, 2);
    utimesSync(bin, new Date(), new Date(Date.now() + 5000));
    forgetProfiles();
    await userProfile({ ...env, MEMFABRIC_QEMU: bin });
    assert.equal(readdirSync(join(cache, 'memfabric', 'profiles')).length, 3, 'a binary with a new mtime is read again');

    forgetProfiles();
    const none = await userProfile({ ...env, MEMFABRIC_QEMU: join(cache, 'missing-qemu') });
    assert.equal(none.profile, bundledProfile());
    assert.equal(none.profile.origin.kind, 'bundled');
    assert.match(none.note!, /no QEMU binary '.*missing-qemu' \(MEMFABRIC_QEMU\): judging with the bundled QEMU 10\.0\.\d+ profile/);
  } finally {
    forgetProfiles();
    rmSync(cache, { recursive: true, force: true });
  }
});

test('bundledProfile picks the nearest bundled version', () => {
  assert.equal(bundledProfile('7.2.0'), bundled72);
  assert.equal(bundledProfile('8.0.4'), bundled72);
  assert.equal(bundledProfile('9.2.1'), bundled100);
  assert.equal(bundledProfile('10.1.0'), bundled100);
  assert.equal(bundledProfile(), bundled100);
  assert.ok(qemuAtLeast(bundled100, '8.1') && !qemuAtLeast(bundled72, '8.1'));
});

const VOLATILE = `qemu-system-x86_64 -M q35,cxl=on -m 2G \\
  -object memory-backend-ram,id=vmem0,size=256M \\
  -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \\
  -device cxl-rp,port=0,bus=cxl.1,id=root_port13,chassis=0,slot=2 \\
  -device cxl-type3,bus=root_port13,volatile-memdev=vmem0,id=cxl-vmem0 \\
  -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G
`;

test('the rules judge for the profile they are given: a property or machine type only one version has', () => {
  const codes = (text: string, qemu: QemuProfile) => analyzeDocument(text, '/tmp/x.qemu', NO_HOST, 'qemu', { qemu, incremental: false }).diagnostics.map((d) => `${d.code}: ${d.message}`);
  const on72 = codes(VOLATILE, bundled72);
  assert.ok(on72.some((m) => /^unknown-property: cxl-type3 has no property 'volatile-memdev'/.test(m)), on72.join('\n'));
  assert.ok(!codes(VOLATILE, bundled100).some((m) => m.startsWith('unknown-property')), codes(VOLATILE, bundled100).join('\n'));

  const m100 = 'qemu-system-x86_64 -M pc-q35-10.0 -m 1G\n';
  assert.ok(codes(m100, bundled72).some((m) => m.startsWith("unknown-machine-type: qemu-system-x86_64 7.2.22 has no machine type 'pc-q35-10.0'")), codes(m100, bundled72).join('\n'));
  assert.deepEqual(codes(m100, bundled100), []);

  const mbox = 'qemu-system-x86_64 -M q35 -m 1G -device cxl-switch-mailbox-cci,id=m\n';
  assert.ok(codes(mbox, bundled72).some((m) => m.startsWith("unknown-device-type: QEMU 7.2.22 has no device 'cxl-switch-mailbox-cci'")));
  assert.ok(!codes(mbox, bundled100).some((m) => m.startsWith('unknown-device-type')));
});

test('completion offers the properties of the QEMU judged for', () => {
  const text = 'qemu-system-x86_64 -device cxl-type3,';
  const labels = (q: QemuProfile) => complete(text, text.length, 'qemu', undefined, q).map((c) => c.label);
  assert.ok(labels(bundled100).includes('volatile-memdev'));
  assert.ok(!labels(bundled72).includes('volatile-memdev'));
  assert.ok(labels(bundled72).includes('lsa'));
});

test('memfabric check judges for the QEMU named in MEMFABRIC_QEMU, and says which', { skip: !(hasQemu() && hasQemu10()) && 'needs QEMU 7.2 and 10.0' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-profile-cli-'));
  try {
    const f = join(dir, 'volatile.qemu');
    writeFileSync(f, VOLATILE);
    const r10 = runCli(['check', '--format', 'json', f], { env: { MEMFABRIC_QEMU: QEMU10 } });
    const j10 = JSON.parse(r10.stdout);
    assert.equal(j10.qemu.version.startsWith('10.0.'), true);
    assert.equal(j10.qemu.firmware, 'SeaBIOS 1.16.3');
    assert.equal(j10.qemu.origin, QEMU10);
    assert.ok(!j10.files[0].diagnostics.some((d: { code: string }) => d.code === 'unknown-property'), r10.stdout);
    const r72 = runCli(['check', f]);
    assert.match(r72.stdout, /unknown-property\] cxl-type3 has no property 'volatile-memdev'/);
    assert.match(r72.stdout, /judged for QEMU 7\.2\.\d+, SeaBIOS 1\.16\.2\)/);
    const none = runCli(['check', f], { env: { MEMFABRIC_QEMU: join(dir, 'no-qemu') } });
    assert.match(none.stderr, /memfabric: note: no QEMU binary .* judging with the bundled QEMU 10\.0\.\d+ profile/);
    assert.match(none.stdout, /judged for QEMU 10\.0\.\d+, SeaBIOS 1\.16\.3 \(bundled profile\)/);
    assert.ok(existsSync(f));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The language server over stdio, initialized with the client's memfabric.qemuBinary (or none). */
async function lspJudge(qemuBinary: string | undefined, text: string): Promise<{ qemu: QemuInfo; codes: string[] }> {
  const child = spawn(process.execPath, [BIN, 'lsp', '--stdio'], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
  const conn = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-profile-lsp-'));
  try {
    const uri = pathToFileURL(join(dir, 'volatile.qemu')).toString();
    const published = new Promise<{ code?: string | number }[]>((res) => conn.onNotification('textDocument/publishDiagnostics', (p: { uri: string; diagnostics: { code?: string | number }[] }) => p.uri === uri && res(p.diagnostics)));
    conn.listen();
    await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions: { qemuBinary } });
    conn.sendNotification('initialized', {});
    const qemu = await conn.sendRequest(QemuRequest.type);
    // Opened after the profile is known: judged with it from the first publish.
    conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'qemu-cmdline', version: 1, text } });
    const diags = await published;
    return { qemu, codes: diags.map((d) => String(d.code)) };
  } finally {
    child.kill();
    conn.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the language server judges for memfabric.qemuBinary (initializationOptions) and names it in memfabric/qemu', { skip: !(hasQemu() && hasQemu10()) && 'needs QEMU 7.2 and 10.0' }, async () => {
  const on10 = await lspJudge(QEMU10, VOLATILE);
  assert.match(on10.qemu.version, /^10\.0\./);
  assert.match(on10.qemu.label, /^QEMU 10\.0\.\d+, SeaBIOS 1\.16\.3$/);
  assert.equal(on10.qemu.origin, QEMU10);
  assert.ok(!on10.codes.includes('unknown-property'), on10.codes.join(' '));
  const onPath = await lspJudge(undefined, VOLATILE);
  assert.match(onPath.qemu.label, /^QEMU 7\.2\.\d+, SeaBIOS 1\.16\.2$/);
  assert.ok(onPath.codes.includes('unknown-property'), onPath.codes.join(' '));
});

test('hover on a property name gives its type and default in the QEMU judged for', () => {
  const text = 'qemu-system-x86_64 -M q35 -m 1G -device cxl-type3,sn=0x1,volatile-memdev=v0 -object memory-backend-ram,id=v0,size=256M\n';
  const at = (q: QemuProfile, word: string) => {
    const doc = analyzeDocument(text, '/tmp/h.qemu', NO_HOST, 'qemu', { qemu: q, incremental: false });
    return hover(new EditorAnalysis(text, 'qemu', doc, q), text.indexOf(word) + 1)?.markdown ?? '';
  };
  assert.match(at(bundled100, 'sn=0x1'), /`sn` of -device cxl-type3: uint64, default `0xffffffffffffffff` \(QEMU 10\.0\.\d+, SeaBIOS 1\.16\.3 \(bundled profile\)\)/);
  assert.match(at(bundled100, 'volatile-memdev'), /`volatile-memdev` of -device cxl-type3: link<memory-backend>/);
  // QEMU 7.2 has no such property: no description, the diagnostic says why.
  assert.doesNotMatch(at(bundled72, 'volatile-memdev'), /link<memory-backend>/);
});

test('layout: a QEMU or firmware the model was not checked against gets the nearest model, and the difference is stated', () => {
  assert.equal(versionWarning(bundled72), undefined);
  assert.equal(versionWarning(bundled100), undefined);
  const git = { ...bundled100, version: '10.2.50', firmware: { name: 'SeaBIOS', version: '1.17.0' } };
  assert.match(versionWarning(git)!, /checked against QEMU 7\.2 with SeaBIOS 1\.16\.2 and QEMU 10\.0 with SeaBIOS 1\.16\.3; QEMU 10\.2\.50 is predicted with the nearest model/);
  const otherFw = { ...bundled72, firmware: { name: 'SeaBIOS', version: '1.16.3' } };
  assert.match(versionWarning(otherFw)!, /this QEMU 7\.2\.\d+ loads SeaBIOS 1\.16\.3, predicted with the nearest model/);
  // The nearest model: a 10.2 is laid out as 10.0 (8.2+ platform, SeaBIOS 1.16.3 placement).
  const n = analyzeDocument('qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=f,mem-path=/tmp/f.raw,size=32G,share=on -device ivshmem-plain,memdev=f,id=s,bus=pcie.0\n', '/tmp/w.qemu', NO_HOST, 'qemu', { incremental: false }).nodes[0];
  const bar = (q: QemuProfile) => computeLayout(n, { agent: false, qemu: layoutQemu(q) }).bars.find((b) => b.device === 's' && b.bar === 2)!.start;
  assert.equal(bar(git), bar(bundled100));
  assert.notEqual(bar(bundled72), bar(bundled100));
});

// ------------------------------------------------------------------ aarch64: a profile per binary, a profile per node

const bundledArm = BUNDLED.find((p) => p.arch === 'aarch64')!;
const hasArm = () => spawnSync('qemu-system-aarch64', ['--version']).status === 0;

/** An aarch64 guest as one would run it: virt, GICv3, two NUMA nodes, a root port and a NIC behind it. */
const ARM_ARGV =
  'qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a57 -m 1G -smp 4 \\\n' +
  '  -object memory-backend-ram,id=m0,size=512M -object memory-backend-ram,id=m1,size=512M \\\n' +
  '  -numa node,nodeid=0,cpus=0-1,memdev=m0 -numa node,nodeid=1,cpus=2-3,memdev=m1 \\\n' +
  '  -device pcie-root-port,id=rp0,bus=pcie.0,chassis=1 -device virtio-net-pci,bus=rp0 \\\n' +
  '  -object memory-backend-file,id=sh,mem-path=/dev/shm/arm-ivshmem,size=64M,share=on -device ivshmem-plain,memdev=sh,bus=pcie.0 \\\n' +
  '  -display none\n';

test('the bundled aarch64 profile is what qemu-system-aarch64 7.2 says of itself, read by the same code', { skip: !hasArm() && 'no qemu-system-aarch64 (Debian qemu-system-arm)' }, async () => {
  const live = await readProfile('qemu-system-aarch64');
  assert.equal(live.arch, 'aarch64');
  assert.match(live.version, /^7\.2\.\d+$/);
  assert.equal(live.firmware, undefined, 'no SeaBIOS line: there is no q35 to boot');
  sameProfile(live, bundledArm);
  assert.equal(live.machines.virt.alias, 'virt-7.2');
  // And the x86 profiles name their architecture too.
  assert.deepEqual(BUNDLED.map((p) => `${p.arch} ${shortVersionOf(p)}`), ['x86_64 7.2', 'x86_64 10.0', 'aarch64 7.2']);
});

function shortVersionOf(p: QemuProfile) {
  return p.version.split('.').slice(0, 2).join('.');
}

test('an aarch64 command line is judged with the aarch64 profile: no false errors, and the x86 PC rules stay silent', () => {
  const r = analyzeDocument(ARM_ARGV, '/tmp/arm.qemu', NO_HOST, 'qemu', { incremental: false, information: true });
  assert.equal(r.nodes[0].arch, 'aarch64');
  assert.deepEqual(r.diagnostics.map((d) => `${d.code}: ${d.message}`), []);
  // Judged as x86 (the same options under qemu-system-x86_64) it is not clean: virt is no x86 machine.
  const x86 = analyzeDocument(ARM_ARGV.replace('qemu-system-aarch64', 'qemu-system-x86_64'), '/tmp/x86.qemu', NO_HOST, 'qemu', { incremental: false });
  assert.equal(x86.nodes[0].arch, 'x86_64');
  assert.ok(x86.diagnostics.some((d) => d.code === 'unknown-machine-type' && /^qemu-system-x86_64 7\.2\.\d+ has no machine type 'virt'/.test(d.message)), x86.diagnostics.map((d) => d.message).join('\n'));
  // What aarch64 QEMU lacks is reported in its own name.
  const wrong = analyzeDocument('qemu-system-aarch64 -M q35 -m 1G -device isa-debugcon\n', '/tmp/arm2.qemu', NO_HOST, 'qemu', { incremental: false });
  const msgs = wrong.diagnostics.map((d) => `${d.code}: ${d.message}`);
  assert.ok(msgs.some((m) => /^unknown-machine-type: qemu-system-aarch64 7\.2\.\d+ has no machine type 'q35'/.test(m)), msgs.join('\n'));
  assert.ok(msgs.some((m) => /^unknown-device-type: QEMU 7\.2\.\d+ has no device 'isa-debugcon'/.test(m)), msgs.join('\n'));
});

test('qemu-system-aarch64 7.2 itself starts the aarch64 command line that memfabric finds clean', { skip: !hasArm() && 'no qemu-system-aarch64' }, () => {
  const words = ARM_ARGV.replace(/\\\n/g, ' ').trim().split(/\s+/).slice(1).map((w) => w.replace('/dev/shm/arm-ivshmem', join(tmpdir(), `memfabric-arm-${process.pid}`)));
  const r = spawnSync('qemu-system-aarch64', [...words, '-S', '-nodefaults', '-qmp', 'stdio'], { input: '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n', encoding: 'utf8', timeout: 20000 });
  rmSync(join(tmpdir(), `memfabric-arm-${process.pid}`), { force: true });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /"error"/);
});

test('the engine takes one profile or one per architecture; a node of another architecture gets the bundled profile of its own', () => {
  const text = 'qemu-system-aarch64 -M virt -m 1G\n';
  // One x86 profile (what the CLI reads of qemu-system-x86_64): the aarch64 node is judged with the bundled aarch64 one.
  assert.deepEqual(analyzeDocument(text, '/tmp/a.qemu', NO_HOST, 'qemu', { qemu: bundled100, incremental: false }).diagnostics, []);
  assert.equal(profileFor(bundled100, 'aarch64'), bundledArm);
  assert.equal(profileFor(bundled100, 'x86_64'), bundled100);
  assert.equal(profileFor(undefined, 'x86_64'), bundled72);
  // A map by architecture: each node gets its own.
  const fake = { ...bundledArm, machines: {} };
  const r = analyzeDocument(text, '/tmp/a.qemu', NO_HOST, 'qemu', { qemu: { x86_64: bundled72, aarch64: fake }, incremental: false });
  assert.deepEqual(r.diagnostics.map((d) => d.code), ['unknown-machine-type']);
  assert.equal(profileFor({ x86_64: bundled100 }, 'aarch64'), bundledArm);
});

test('CLI: an aarch64 domain is judged for qemu-system-aarch64 (from PATH, else bundled), and says so', () => {
  const r = runCli(['check', join(REPO, 'test/fixtures/libvirt/egm-rfc.xml')]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /1 problem\(s\), 0 error\(s\) in 1 file\(s\), 1 node\(s\) \(judged for QEMU [\d.]+[^;]*; aarch64 nodes: QEMU 7\.2\.\d+ \(aarch64\)/);
  assert.doesNotMatch(r.stdout, /unknown-machine-type/);
});

test('a bundled profile reads its JSON file on first use, and its head (arch, version, firmware) is what that file says', () => {
  const files = ['profile-7.2.json', 'profile-10.0.json', 'profile-aarch64-7.2.json'];
  BUNDLED.forEach((p, i) => {
    const file = JSON.parse(readFileSync(join(REPO, 'server', 'src', 'engine', 'qemu', files[i]), 'utf8')) as QemuProfile;
    assert.deepEqual({ arch: p.arch, version: p.version, versionLine: p.versionLine, firmware: p.firmware }, { arch: file.arch, version: file.version, versionLine: file.versionLine, firmware: file.firmware }, files[i]);
    // the lists, read lazily, are the file's
    assert.deepEqual(Object.keys(p.devices), Object.keys(file.devices), files[i]);
    assert.deepEqual(p.commands, file.commands, files[i]);
    assert.deepEqual(p.origin, { kind: 'bundled' });
    // Stored with each property list once (x86 CPU models, aarch64 flash chips and NICs …): a device
    // names the first that has its properties, and shares them when loaded.
    const stored = file as unknown as StoredProfile;
    const named = Object.entries(stored.devices).flatMap(([n, d]) => ('sameProps' in d ? [[n, d.sameProps]] : []));
    assert.ok(named.length > 150, `${files[i]}: ${named.length} devices name another's properties`);
    for (const [n, like] of named) assert.equal(p.devices[n].props, p.devices[like].props, n);
  });
});

test('a stored profile that names a device it lacks loads (that device without properties) rather than failing', () => {
  const p = loadProfile({ arch: 'x86_64', version: '9.9.0', versionLine: 'QEMU emulator version 9.9.0', devices: { a: { bus: null, sameProps: 'b' }, b: { bus: 'PCI', props: { x: { type: 'bool' } } }, c: { bus: 'PCI', sameProps: 'b' } }, objects: {}, machines: {}, machineProps: { q35: {}, pc: {} }, globals: {} });
  assert.deepEqual(p.devices.a, { bus: null, props: {} });
  assert.equal(p.devices.c.props, p.devices.b.props);
  assert.deepEqual(Object.keys(p.devices), ['a', 'b', 'c']);
});
