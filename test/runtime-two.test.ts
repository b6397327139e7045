/**
 * Two clusters side by side, booted at the same time (real guests, TCG):
 *   A = examples/cxl-switch.cluster.xml (one CXL node), booted in text mode;
 *   B = a one-node FAME cluster, booted with --format json and the client's
 *       environment: MEMFABRIC_QEMU (absolute path), MEMFABRIC_ACCEL=tcg,
 *       MEMFABRIC_IMAGE_DIR (a copy of the image cache).
 * Neither touches the other's files or sockets; verify passes on the CXL
 * example; view cxl / daxctl (text and json) on the CXL node; a second boot of
 * a running cluster is refused and creates nothing; stopping A leaves B
 * running and answering. The booted clusters are shared by the assertions.
 * Also the CXL interleave example: two windows, one interleaved over two host
 * bridges (its plan once gave each window a -machine of its own, which QEMU
 * 7.2 refuses: rules/cxl-fmw-split.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO, hasQemu, processArgv, processesMentioning, runCliAsync, runCliEnv, socketsUnder } from './support/cli';
import { buildImage } from '../server/src/runtime/image';

type BootJson = { ok: boolean; error?: string; node?: string; console?: string[]; cluster?: string; runDir?: string; accel?: string; nodes?: { name: string; pid: number; bootMs: number }[] };
type StatusJson = { runDir: string; running: boolean; nodes: { name: string; state: string; pid?: number; qmpSocket: string; consoleSocket: string; agentSocket: string }[] };

const FAME1 = `<cluster name="fame1">
  <fabric id="fam" size="1G" path="fam1.raw"/>
  <node name="solo" machine="q35" memory="512M" cpus="1">
    <attach fabric="fam"/>
  </node>
</cluster>
`;

/** Every file under dir with its size and mtime (what a refused boot must not change). */
function snapshotFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const st = statSync(p);
        out.push(`${p} ${st.size} ${st.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out.sort();
}

test('two clusters side by side: separate files and sockets, stop one, the other runs on; verify and view on the CXL example', { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 600_000 }, async () => {
  const image = await buildImage({}); // cached normally
  const root = mkdtempSync(join(tmpdir(), 'memfabric-two-'));
  const run = join(root, 'run'); // one run base for both: the clusters must keep apart by themselves
  const dirA = join(root, 'a');
  const dirB = join(root, 'b');
  const images = join(root, 'images');
  mkdirSync(dirA);
  mkdirSync(dirB);
  // the client's MEMFABRIC_IMAGE_DIR: a copy of the cache (same key, nothing to download)
  cpSync(image.dir, join(images, image.key!), { recursive: true });
  const fileA = join(dirA, 'cxl-switch.cluster.xml');
  writeFileSync(fileA, readFileSync(join(REPO, 'examples', 'cxl-switch.cluster.xml')));
  const fileB = join(dirB, 'fame1.cluster.xml');
  writeFileSync(fileB, FAME1);
  const qemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).stdout.trim();
  assert.match(qemu, /^\//);
  const envA = { MEMFABRIC_RUN_DIR: run };
  const envB = { MEMFABRIC_RUN_DIR: run, MEMFABRIC_QEMU: qemu, MEMFABRIC_ACCEL: 'tcg', MEMFABRIC_IMAGE_DIR: images };
  const mfA = (args: string[]) => runCliEnv(args, envA, { timeoutMs: 120_000 });
  const mfB = (args: string[]) => runCliEnv(args, envB, { timeoutMs: 120_000 });
  try {
    // memfabric image with MEMFABRIC_IMAGE_DIR: found in the copy, nothing built
    const im = mfB(['image', '--format', 'json']);
    assert.equal(im.status, 0, im.stderr);
    const imj = JSON.parse(im.stdout) as { ok: boolean; cached: boolean; dir: string; kernel: string; initrd: string; initrdBytes: number; kernelRelease: string; packages: { name: string; version: string }[] };
    assert.equal(imj.ok, true);
    assert.equal(imj.cached, true);
    assert.equal(imj.dir, join(images, image.key!));
    assert.equal(imj.kernel, join(images, image.key!, 'vmlinuz'));
    assert.ok(statSync(imj.initrd).isFile());
    assert.ok(imj.packages.some((p) => p.name === `linux-image-${imj.kernelRelease}` && /\d/.test(p.version)), JSON.stringify(imj.packages));
    assert.ok(imj.packages.some((p) => p.name === 'busybox-static'));
    // QEMU's guest agent is in, and the initrd says how big it is (kept small: under 10 MiB).
    assert.ok(imj.packages.some((p) => p.name === 'qemu-guest-agent'), JSON.stringify(imj.packages));
    assert.equal(imj.initrdBytes, statSync(imj.initrd).size);
    assert.ok(imj.initrdBytes < 10 << 20, `initrd ${imj.initrdBytes} bytes`);
    const imt = mfA(['image']);
    assert.equal(imt.status, 0, imt.stderr);
    assert.match(imt.stdout, /^guest image [0-9a-f]{24} \(kernel 6\.1\): cached in /);
    assert.match(imt.stdout, /^kernel {2}\/.*vmlinuz {2}\(Linux \d/m);
    assert.match(imt.stdout, /^initrd {2}\/.*initrd\.img {2}\(~[\d.]+ MiB, with QEMU's guest agent\)$/m);

    // both boots at once
    const [bootA, bootB] = await Promise.all([
      runCliAsync(['boot', fileA, '--timeout', '240'], envA),
      runCliAsync(['boot', '--format', 'json', fileB, '--timeout', '240'], envB),
    ]);
    assert.equal(bootA.status, 0, bootA.stdout + bootA.stderr);
    assert.match(bootA.stdout, /^cluster cxl-switch: 1 node\(s\) ready/);
    assert.equal(bootB.status, 0, bootB.stdout + bootB.stderr);
    const jb = JSON.parse(bootB.stdout) as BootJson; // stdout is exactly one JSON object
    assert.equal(jb.ok, true);
    assert.equal(jb.cluster, 'fame1');
    assert.equal(jb.accel, 'tcg');
    assert.deepEqual(jb.nodes!.map((n) => n.name), ['solo']);
    assert.ok(jb.nodes![0].pid > 0 && jb.nodes![0].bootMs > 0);
    // progress went to stderr while boot waited
    assert.match(bootB.stderr, /solo: QEMU started \(pid \d+, TCG\), waiting for the guest/);
    assert.match(bootB.stderr, /solo ready in \d+\.\d s/);

    const stA = JSON.parse(mfA(['status', '--format', 'json', fileA]).stdout) as StatusJson;
    const stB = JSON.parse(mfB(['status', '--format', 'json', fileB]).stdout) as StatusJson;
    assert.deepEqual(stA.nodes.map((n) => n.state), ['ready']);
    assert.deepEqual(stB.nodes.map((n) => n.state), ['ready']);
    assert.equal(jb.runDir, stB.runDir);
    assert.notEqual(stA.runDir, stB.runDir);
    // each QEMU names only its own run directory and files
    const argvA = processArgv(stA.nodes[0].pid!);
    const argvB = processArgv(stB.nodes[0].pid!);
    assert.ok(argvA.some((a) => a.includes(stA.runDir)) && !argvA.some((a) => a.includes(stB.runDir) || a.includes(dirB)), argvA.join(' '));
    assert.ok(argvB.some((a) => a.includes(stB.runDir)) && !argvB.some((a) => a.includes(stA.runDir) || a.includes(dirA)), argvB.join(' '));
    // B's environment: the QEMU binary, the accelerator, the image directory
    assert.equal(argvB[0], qemu);
    assert.equal(argvB[argvB.indexOf('-accel') + 1], 'tcg');
    assert.equal(argvB[argvB.indexOf('-kernel') + 1], imj.kernel);
    assert.equal(argvA[argvA.indexOf('-kernel') + 1], image.kernel);
    assert.deepEqual(readdirSync(dirA).sort(), ['cxl-switch.cluster.xml', 'sw-mem0.raw', 'sw-mem1.raw']);
    assert.deepEqual(readdirSync(dirB).sort(), ['fam1.raw', 'fame1.cluster.xml']);

    // verify passes on the CXL example
    const v = mfA(['verify', fileA]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /^switched: the guest's memory map equals the prediction/m);
    const vj = mfA(['verify', '--format', 'json', fileA]);
    assert.equal(vj.status, 0, vj.stdout + vj.stderr);
    assert.deepEqual(JSON.parse(vj.stdout), { nodes: [{ name: 'switched', ok: true, differences: [] }] });

    // view cxl: the switch's two memdevs behind one root decoder (the 4 GiB window)
    const cj = mfA(['view', '--format', 'json', fileA, 'switched', 'cxl']);
    assert.equal(cj.status, 0, cj.stderr);
    const cxl = JSON.parse(cj.stdout) as { node: string; cxl: unknown[] };
    assert.equal(cxl.node, 'switched');
    const memdevs: { memdev: string; pmem_size: number; serial: number }[] = [];
    const decoders: { decoder: string; size: number }[] = [];
    const collect = (o: unknown): void => {
      if (Array.isArray(o)) o.forEach(collect);
      else if (o && typeof o === 'object') {
        const r = o as Record<string, unknown>;
        if (typeof r.memdev === 'string' && typeof r.pmem_size === 'number') memdevs.push(r as never);
        if (typeof r.decoder === 'string') decoders.push(r as never);
        Object.values(r).forEach(collect);
      }
    };
    collect(cxl.cxl);
    // the guest names memdevs in probe order; the serial numbers are the topology's sn
    assert.deepEqual(memdevs.map((m) => [m.pmem_size, m.serial]).sort(), [[256 * 2 ** 20, 0x20], [256 * 2 ** 20, 0x21]]);
    assert.deepEqual(memdevs.map((m) => m.memdev).sort(), ['mem0', 'mem1']);
    assert.deepEqual(decoders.filter((d) => d.decoder === 'decoder0.0').map((d) => d.size), [4 * 2 ** 30]);
    const ct = mfA(['view', fileA, 'switched', 'cxl']);
    assert.equal(ct.status, 0, ct.stderr);
    assert.match(ct.stdout, /^# switched: cxl list -v$/m);
    assert.match(ct.stdout, /^bus root0 {2}provider ACPI\.CXL/m);
    assert.match(ct.stdout, /^ +memdev mem\d {2}pmem_size 256 MiB {2}serial 0x20/m);
    assert.match(ct.stdout, /^ +memdev mem\d {2}pmem_size 256 MiB {2}serial 0x21/m);
    assert.match(ct.stdout, /^ +decoder decoder0\.0 .*size 4 GiB/m);
    // view daxctl: no DAX device before a region is made (the flow is in cxl-flow.test.ts)
    const dj = mfA(['view', '--format', 'json', fileA, 'switched', 'daxctl']);
    assert.equal(dj.status, 0, dj.stderr);
    assert.deepEqual(JSON.parse(dj.stdout), { node: 'switched', daxctl: [] });
    const dt = mfA(['view', fileA, 'switched', 'daxctl']);
    assert.equal(dt.status, 0, dt.stderr);
    assert.equal(dt.stdout, '# switched: daxctl list\n(no DAX devices)\n');

    // a second boot of a running cluster: refused, nothing created or started
    const filesA = snapshotFiles(dirA);
    const qemusA = processesMentioning(stA.runDir);
    const again = runCliEnv(['boot', '--format', 'json', fileA], envA, { timeoutMs: 60_000 });
    assert.equal(again.status, 1, again.stdout + again.stderr);
    const aj = JSON.parse(again.stdout) as BootJson;
    assert.equal(aj.ok, false);
    assert.match(aj.error!, /cluster 'cxl-switch' is already running \(switched \(pid \d+\)\); run memfabric stop /);
    assert.deepEqual(snapshotFiles(dirA), filesA);
    assert.deepEqual(processesMentioning(stA.runDir), qemusA);

    // stop A: B runs on and answers; none of B's sockets went away
    const stop = mfA(['stop', fileA]);
    assert.equal(stop.status, 0, stop.stderr);
    assert.deepEqual(processesMentioning(stA.runDir), []);
    assert.deepEqual(socketsUnder(stA.runDir), []);
    const after = JSON.parse(mfB(['status', '--format', 'json', fileB]).stdout) as StatusJson;
    assert.deepEqual(after.nodes.map((n) => [n.state, n.pid]), [['ready', stB.nodes[0].pid]]);
    for (const s of [after.nodes[0].qmpSocket, after.nodes[0].consoleSocket, after.nodes[0].agentSocket]) assert.ok(statSync(s).isSocket(), s);
    const ex = mfB(['exec', fileB, 'solo', '--', 'sh', '-c', 'echo still-$((40+2))']);
    assert.equal(ex.status, 0, ex.stderr);
    assert.equal(ex.stdout, 'still-42\n');
    assert.equal(statSync(join(dirB, 'fam1.raw')).size, 2 ** 30);

    const stopB = mfB(['stop', fileB]);
    assert.equal(stopB.status, 0, stopB.stderr);
    assert.deepEqual(processesMentioning(run), []);
    assert.deepEqual(socketsUnder(run), []);
  } finally {
    runCliEnv(['stop', fileA], envA, { timeoutMs: 60_000 });
    runCliEnv(['stop', fileB], envB, { timeoutMs: 60_000 });
    rmSync(root, { recursive: true, force: true });
  }
});

test('verify on the CXL interleave example', { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 300_000 }, async () => {
  await buildImage({});
  const root = mkdtempSync(join(tmpdir(), 'memfabric-interleave-'));
  const run = join(root, 'run');
  const file = join(root, 'cxl-interleave.cluster.xml');
  writeFileSync(file, readFileSync(join(REPO, 'examples', 'cxl-interleave.cluster.xml')));
  const mf = (args: string[]) => runCliEnv(args, { MEMFABRIC_RUN_DIR: run }, { timeoutMs: 240_000 });
  try {
    const boot = mf(['boot', '--format', 'json', file, '--timeout', '200']);
    const j = JSON.parse(boot.stdout) as BootJson;
    assert.equal(j.ok, true, j.error);
    const v = mf(['verify', '--format', 'json', file]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.deepEqual(JSON.parse(v.stdout), { nodes: [{ name: 'cxl2hb', ok: true, differences: [] }] });
  } finally {
    mf(['stop', file]);
    assert.deepEqual(processesMentioning(run), []);
    rmSync(root, { recursive: true, force: true });
  }
});
