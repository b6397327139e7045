/**
 * What the nodes boot, named in the topology (<guest kernel initrd disk append>),
 * and boot's answers for the client (--format json, environment variables):
 * - bad input starts nothing and creates no file: a missing user kernel, an
 *   unknown node, a backing file of the wrong size, MEMFABRIC_ACCEL=kvm
 *   without KVM, a bad MEMFABRIC_ACCEL, a MEMFABRIC_QEMU that does not exist;
 * - the Debian kernel of the cached image, copied and named as the user's
 *   kernel (node a, with memfabric's initramfs), and as kernel + initrd of the
 *   user's own with a disk image attached (node b), boot in one cluster;
 * - a disk of the user's own without a kernel is booted by the firmware: its
 *   boot sector's message is in the console lines of boot's JSON failure;
 * - image="none" starts QEMU without a guest; exec explains it cannot run.
 * The run directory is a temp dir (MEMFABRIC_RUN_DIR), never the user's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasQemu, processArgv, processesMentioning, runCliEnv, socketsUnder } from './support/cli';
import { buildImage } from '../server/src/runtime/image';
import { kvmUsable } from '../server/src/runtime/launch';

type BootJson = { ok: boolean; error?: string; node?: string; console?: string[]; runDir?: string; nodes?: { name: string; pid: number }[] };

const fabricCluster = (guest: string) => `<cluster name="bad">
  ${guest}
  <fabric id="fam" size="1G" path="fam.raw"/>
  <node name="n{n}" count="2" memory="256M">
    <attach fabric="fam"/>
  </node>
</cluster>
`;

test('bad input starts nothing and creates no file (text and --format json)', { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-badguest-'));
  const run = join(dir, 'run');
  const mf = (args: string[], env: NodeJS.ProcessEnv = {}) => runCliEnv(args, { MEMFABRIC_RUN_DIR: run, ...env }, { timeoutMs: 60_000 });
  const nothingStarted = (what: string) => {
    assert.ok(!existsSync(join(dir, 'fam.raw')), `${what}: no backing file created`);
    assert.deepEqual(processesMentioning(run), [], `${what}: no QEMU`);
    assert.deepEqual(socketsUnder(run), [], `${what}: no socket, pid file or lock`);
  };
  try {
    // a kernel of the user's own that does not exist
    const file = join(dir, 'bad.cluster.xml');
    writeFileSync(file, fabricCluster('<guest kernel="kernels/vmlinuz-missing"/>'));
    const t = mf(['boot', file]);
    assert.equal(t.status, 1, t.stdout + t.stderr);
    assert.equal(t.stdout, '');
    assert.match(t.stderr, /nothing started:\n {2}the kernel named in <guest kernel="…"> does not exist: .*\/kernels\/vmlinuz-missing \(ENOENT\)/);
    nothingStarted('missing kernel');
    const j = mf(['boot', '--format', 'json', file]);
    assert.equal(j.status, 1);
    const jj = JSON.parse(j.stdout) as BootJson;
    assert.equal(jj.ok, false);
    assert.match(jj.error!, /the kernel named in <guest kernel="…"> does not exist: .*vmlinuz-missing/);
    nothingStarted('missing kernel (json)');
    // a disk and an initrd that are directories, not files
    mkdirSync(join(dir, 'adir'));
    writeFileSync(file, fabricCluster('<guest initrd="adir" disk="adir"/>'));
    const d = mf(['boot', file]);
    assert.equal(d.status, 1);
    assert.match(d.stderr, /the initrd named in <guest initrd="…"> is not a regular file: .*\/adir/);
    nothingStarted('initrd is a directory');

    // an error in the topology: the diagnostics, in JSON too
    writeFileSync(file, fabricCluster('').replace('size="1G"', 'size="3G"'));
    const e = mf(['boot', '--format', 'json', file]);
    assert.equal(e.status, 1);
    assert.match((JSON.parse(e.stdout) as BootJson).error!, /bad\.cluster\.xml:\d+:\d+: error \[ivshmem-size-pow2\] [^]*nothing started/);
    nothingStarted('topology error');

    writeFileSync(file, fabricCluster(''));
    // an unknown node: usage (2), JSON too
    const u = mf(['boot', '--format', 'json', '--node', 'n9', file]);
    assert.equal(u.status, 2);
    assert.deepEqual(JSON.parse(u.stdout), { ok: false, error: `no node 'n9' in ${file} (nodes: n1, n2)` });
    nothingStarted('unknown node');
    // the environment of the client
    if (!kvmUsable()) {
      const k = mf(['boot', '--format', 'json', file], { MEMFABRIC_ACCEL: 'kvm' });
      assert.equal(k.status, 1);
      assert.match((JSON.parse(k.stdout) as BootJson).error!, /^nothing started: MEMFABRIC_ACCEL=kvm, but KVM is not usable here/);
      nothingStarted('MEMFABRIC_ACCEL=kvm');
    }
    const a = mf(['boot', file], { MEMFABRIC_ACCEL: 'fast' });
    assert.equal(a.status, 1);
    assert.match(a.stderr, /MEMFABRIC_ACCEL must be auto, kvm or tcg, not 'fast'/);
    nothingStarted('bad MEMFABRIC_ACCEL');
    const q = mf(['boot', '--format', 'json', file], { MEMFABRIC_QEMU: join(dir, 'no-such-qemu') });
    assert.equal(q.status, 1);
    assert.match((JSON.parse(q.stdout) as BootJson).error!, /the QEMU binary '.*no-such-qemu' \(MEMFABRIC_QEMU\) is not an executable file/);
    nothingStarted('MEMFABRIC_QEMU missing');

    // an image cache that cannot be used: memfabric image and boot say so; boot starts nothing
    writeFileSync(join(dir, 'not-a-dir'), '');
    const im = mf(['image', '--format', 'json'], { MEMFABRIC_IMAGE_DIR: join(dir, 'not-a-dir') });
    assert.equal(im.status, 1, im.stdout + im.stderr);
    assert.deepEqual(JSON.parse(im.stdout), { ok: false, error: `cannot use ${join(dir, 'not-a-dir')} as the image cache (MEMFABRIC_IMAGE_DIR): a file that is not a directory is in the way`, cacheDir: join(dir, 'not-a-dir') });
    const ib = mf(['boot', file], { MEMFABRIC_IMAGE_DIR: join(dir, 'not-a-dir') });
    assert.equal(ib.status, 1);
    assert.match(ib.stderr, /nothing started: the guest image cannot be built: cannot use .*not-a-dir as the image cache/);
    nothingStarted('unusable image cache');

    // verify on a cluster that is not running: JSON says so
    const v = mf(['verify', '--format', 'json', file]);
    assert.equal(v.status, 1);
    assert.deepEqual(JSON.parse(v.stdout), { nodes: [], error: `no node of cluster bad is ready (run memfabric boot ${file})` });

    // a backing file of the wrong size: refused, untouched, JSON names the file
    const fam = join(dir, 'fam.raw');
    const fd = openSync(fam, 'w');
    ftruncateSync(fd, 1 << 20);
    closeSync(fd);
    const before = statSync(fam);
    const w = mf(['boot', '--format', 'json', file]);
    assert.equal(w.status, 1, w.stdout + w.stderr);
    const wj = JSON.parse(w.stdout) as BootJson;
    assert.equal(wj.ok, false);
    assert.match(wj.error!, /fam\.raw/);
    assert.match(wj.error!, /nothing started/);
    const after = statSync(fam);
    assert.deepEqual([after.size, after.mtimeMs, after.ino], [before.size, before.mtimeMs, before.ino]);
    assert.deepEqual(processesMentioning(run), []);
    assert.deepEqual(socketsUnder(run), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the user's own kernel, initrd and disk (the cached Debian kernel, copied), and a disk booted by the firmware", { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 600_000 }, async () => {
  const image = await buildImage({}); // cached normally
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-userguest-'));
  const run = join(dir, 'run');
  const mf = (args: string[], timeoutMs = 120_000) => runCliEnv(args, { MEMFABRIC_RUN_DIR: run }, { timeoutMs });
  const file = join(dir, 'user.cluster.xml');
  const diskFile = join(dir, 'disk.cluster.xml');
  const noneFile = join(dir, 'none.cluster.xml');
  try {
    mkdirSync(join(dir, 'mine'));
    copyFileSync(image.kernel, join(dir, 'mine', 'vmlinuz'));
    copyFileSync(image.initrd, join(dir, 'mine', 'initrd.img'));
    const disk = openSync(join(dir, 'data.raw'), 'w');
    ftruncateSync(disk, 64 * 2 ** 20);
    closeSync(disk);
    writeFileSync(file, `<cluster name="userguest">
  <guest kernel="mine/vmlinuz" append="memfabric.test=user-kernel"/>
  <node name="a" memory="512M"/>
  <node name="b" memory="512M">
    <guest initrd="mine/initrd.img" disk="data.raw"/>
  </node>
</cluster>
`);
    const check = mf(['check', file]);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const boot = mf(['boot', '--format', 'json', file, '--timeout', '240'], 300_000);
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);
    const bj = JSON.parse(boot.stdout) as BootJson;
    assert.equal(bj.ok, true);
    const pid = Object.fromEntries(bj.nodes!.map((n) => [n.name, n.pid]));
    const argvA = processArgv(pid.a);
    const argvB = processArgv(pid.b);
    const opt = (argv: string[], o: string) => argv[argv.indexOf(o) + 1];
    assert.equal(opt(argvA, '-kernel'), join(dir, 'mine', 'vmlinuz'));
    assert.equal(opt(argvA, '-initrd'), image.initrd, "a: memfabric's initramfs with the user's kernel");
    assert.ok(!argvA.includes('-drive'));
    assert.equal(opt(argvB, '-kernel'), join(dir, 'mine', 'vmlinuz'), "b: the cluster's <guest kernel>");
    assert.equal(opt(argvB, '-initrd'), join(dir, 'mine', 'initrd.img'), "b: its own <guest initrd>");
    assert.equal(opt(argvB, '-drive'), `file=${join(dir, 'data.raw')},format=raw,if=none,id=mfdisk`);

    for (const n of ['a', 'b']) {
      const c = mf(['exec', file, n, '--', 'cat', '/proc/cmdline']);
      assert.equal(c.status, 0, c.stderr);
      assert.match(c.stdout, /(^| )memfabric\.test=user-kernel( |$)/m, `${n}: the <guest append> reaches the kernel`);
      const r = mf(['exec', file, n, '--', 'uname', '-r']);
      assert.equal(r.stdout.trim(), image.version);
    }
    // the disk is the guest's /dev/vda, 64 MiB
    const vda = mf(['exec', file, 'b', '--', 'cat', '/sys/block/vda/size']);
    assert.equal(vda.status, 0, vda.stderr);
    assert.equal(vda.stdout.trim(), String((64 * 2 ** 20) / 512));
    const w = mf(['exec', file, 'b', '--', 'sh', '-c', 'printf MFDISK | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null']);
    assert.equal(w.status, 0, w.stderr);
    const st = JSON.parse(mf(['status', '--format', 'json', file]).stdout) as { nodes: { state: string }[] };
    assert.deepEqual(st.nodes.map((n) => n.state), ['ready', 'ready']);
    const stop = mf(['stop', file]);
    assert.equal(stop.status, 0, stop.stderr);
    const fd = openSync(join(dir, 'data.raw'), 'r');
    const buf = Buffer.alloc(6);
    readSync(fd, buf, 0, 6, 512);
    closeSync(fd);
    assert.equal(buf.toString('latin1'), 'MFDISK', "what the guest wrote is in the user's disk file");
    assert.equal(statSync(join(dir, 'data.raw')).size, 64 * 2 ** 20);

    // a disk without a kernel: the firmware boots it (this boot sector prints a line on the
    // serial port and halts); no agent answers, so boot fails naming the node and its console
    const sector = Buffer.alloc(512);
    Buffer.from([
      0xfc, 0x31, 0xc0, 0x8e, 0xd8, // cld; xor ax,ax; mov ds,ax
      0xba, 0xf8, 0x03, // mov dx,0x3f8 (COM1)
      0xbe, 0x16, 0x7c, // mov si,0x7c16 (the message)
      0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, // lodsb; test al,al; jz +3; out dx,al; jmp lodsb
      0xf4, 0xeb, 0xfd, // hlt; jmp hlt
    ]).copy(sector, 0);
    Buffer.from('MEMFABRIC-DISK-BOOT\r\n\0', 'latin1').copy(sector, 0x16);
    sector[510] = 0x55;
    sector[511] = 0xaa;
    writeFileSync(join(dir, 'boot.raw'), Buffer.concat([sector, Buffer.alloc(2 ** 20 - 512)]));
    writeFileSync(diskFile, '<cluster name="diskboot">\n  <guest disk="boot.raw"/>\n  <node name="d" memory="256M"/>\n</cluster>\n');
    const db = mf(['boot', '--format', 'json', diskFile, '--timeout', '20'], 60_000);
    assert.equal(db.status, 1, db.stdout + db.stderr);
    const dj = JSON.parse(db.stdout) as BootJson;
    assert.equal(dj.ok, false);
    assert.equal(dj.node, 'd');
    assert.match(dj.error!, /^node d: guest not ready within 20 s/);
    assert.ok(dj.console!.includes('MEMFABRIC-DISK-BOOT'), JSON.stringify(dj.console));
    assert.deepEqual(processesMentioning(run), [], 'a failed boot leaves no QEMU');
    assert.deepEqual(socketsUnder(run), []);
    assert.ok(readdirSync(dir).includes('boot.raw'));

    // image="none": QEMU with no guest at all is ready when it answers QMP; exec says why it cannot run
    writeFileSync(noneFile, '<cluster name="noguest">\n  <guest image="none"/>\n  <node name="bare" memory="128M"/>\n</cluster>\n');
    const nb = mf(['boot', '--format', 'json', noneFile, '--timeout', '60']);
    assert.equal(nb.status, 0, nb.stdout + nb.stderr);
    const nj = JSON.parse(nb.stdout) as BootJson;
    const bare = processArgv(nj.nodes![0].pid);
    assert.ok(!bare.includes('-kernel') && !bare.includes('-initrd') && !bare.includes('-drive'), bare.join(' '));
    const ne = mf(['exec', noneFile, 'bare', '--', 'true']);
    assert.equal(ne.status, 255);
    assert.match(ne.stderr, /node bare boots no guest \(<guest image="none">\)/);
    assert.equal(mf(['stop', noneFile]).status, 0);
    assert.deepEqual(processesMentioning(run), []);
  } finally {
    mf(['stop', file], 60_000);
    mf(['stop', diskFile], 60_000);
    mf(['stop', noneFile], 60_000);
    rmSync(dir, { recursive: true, force: true });
  }
});
