/**
 * Guest image: build (cached in ~/.cache/memfabric/images), boot under QEMU,
 * run commands through the virtio-serial agent.  The first run downloads
 * Debian packages (about 75 MB) and takes a minute or two more.
 */
import { strict as assert } from 'node:assert';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { guestExec } from '../server/src/runtime/agent';
import { aptStamp, buildImage, forgetVersionLines, systemApt, GuestImage, guestArgv, imageKey, qemuVersionLine, qemuVersionOf, resolvePackages } from '../server/src/runtime/image';

const QEMU = 'qemu-system-x86_64';
const READY_TIMEOUT_MS = 120_000;

function haveQemu(): boolean {
  return spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** KVM only when the CPU has vmx/svm and /dev/kvm is usable; TCG otherwise. */
function accelArgs(): string[] {
  let hw = false;
  try {
    hw = /\b(vmx|svm)\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    hw = false;
  }
  return ['-accel', hw ? 'kvm' : 'tcg'];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Guest {
  proc: ChildProcess;
  dir: string;
  sock: string;
  log: string;
  argv: string[];
  bootMs: number;
  stderr: () => string;
}

async function boot(image: GuestImage, machine: string[], extra: (dir: string) => string[] = () => []): Promise<Guest> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-img-test-'));
  const sock = path.join(dir, 'agent.sock');
  const log = path.join(dir, 'console.log');
  const argv = [
    ...machine, ...accelArgs(), '-display', 'none', '-no-reboot', '-serial', `file:${log}`,
    ...guestArgv(image, { agentSocket: sock }), ...extra(dir),
  ];
  const t0 = Date.now();
  const proc = spawn(QEMU, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  const guest: Guest = { proc, dir, sock, log, argv, bootMs: 0, stderr: () => err };
  while (Date.now() - t0 < READY_TIMEOUT_MS) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`QEMU exited early (${proc.exitCode ?? proc.signalCode}): ${err}`);
    }
    let text = '';
    try { text = fs.readFileSync(log, 'utf8'); } catch { /* not yet */ }
    if (/^MEMFABRIC-READY\r?$/m.test(text)) {
      guest.bootMs = Date.now() - t0;
      return guest;
    }
    await sleep(200);
  }
  await stop(guest);
  let tail = '';
  try { tail = fs.readFileSync(log, 'utf8').slice(-2000); } catch { /* none */ }
  throw new Error(`no MEMFABRIC-READY within ${READY_TIMEOUT_MS / 1000} s; console tail:\n${tail}\nqemu stderr: ${err}`);
}

/** Kill QEMU, wait for it to exit and check that no process of this guest is left. */
async function stop(g: Guest): Promise<void> {
  const exited = new Promise<void>((r) => {
    if (g.proc.exitCode !== null || g.proc.signalCode !== null) r();
    else g.proc.once('exit', () => r());
  });
  g.proc.kill('SIGTERM');
  const t = setTimeout(() => g.proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
  assert.throws(() => process.kill(g.proc.pid!, 0), /ESRCH/, 'QEMU process still exists');
  assert.deepEqual(qemuProcessesUsing(g.dir), [], 'a QEMU process of this guest is still running');
  fs.rmSync(g.dir, { recursive: true, force: true });
}

/** Pids whose command line mentions `marker` (our per-guest temp dir). */
function qemuProcessesUsing(marker: string): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes(QEMU) && cmd.includes(marker)) pids.push(Number(d));
    } catch { /* gone */ }
  }
  return pids;
}

describe('guest image (unit)', () => {
  it('guestArgv passes -append as one element and no -nographic/-serial', () => {
    const a = guestArgv({ kernel: '/k', initrd: '/i' }, { agentSocket: '/tmp/x.sock' });
    assert.equal(a[a.indexOf('-kernel') + 1], '/k');
    assert.equal(a[a.indexOf('-initrd') + 1], '/i');
    assert.equal(a[a.indexOf('-append') + 1], 'console=ttyS0 panic=-1 quiet no_timer_check');
    const withAppend = guestArgv({ kernel: '/k', initrd: '/i' }, { agentSocket: '/tmp/x.sock', append: 'memmap=1G!4G' });
    assert.equal(withAppend[withAppend.indexOf('-append') + 1], 'console=ttyS0 panic=-1 quiet no_timer_check memmap=1G!4G');
    assert.ok(!a.includes('-nographic') && !a.includes('-serial'));
    assert.ok(a.some((x) => x.includes('name=org.qemu.guest_agent.0')), 'the standard guest agent port');
    assert.ok(a.some((x) => x.startsWith('socket,path=/tmp/x.sock,server=on,wait=off')));
    assert.throws(() => guestArgv({ kernel: '/k', initrd: '/i' }, { agentSocket: '/tmp/a,b' }), /','/);
  });

  it('imageKey depends on package versions and init files, not on order', () => {
    const init = [{ name: 'init', data: Buffer.from('#!/bin/sh\n') }];
    const k1 = imageKey(['a=1', 'b=2'], init);
    assert.equal(imageKey(['b=2', 'a=1'], init), k1);
    assert.notEqual(imageKey(['a=1', 'b=3'], init), k1);
    assert.notEqual(imageKey(['a=1', 'b=2'], [{ name: 'init', data: Buffer.from('#!/bin/sh\n#\n') }]), k1);
  });
});

describe('guest image (QEMU boot)', { skip: haveQemu() ? false : `${QEMU} not installed`, timeout: 20 * 60_000 }, () => {
  let image: GuestImage;
  const guests: Guest[] = [];

  before(async () => {
    const t0 = Date.now();
    image = await buildImage({ log: (l) => console.log(`# image: ${l}`) });
    console.log(`# image ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${image.dir} ` +
      `(kernel ${fs.statSync(image.kernel).size} B, initrd ${fs.statSync(image.initrd).size} B)`);
  });

  after(async () => {
    for (const g of guests) {
      if (g.proc.exitCode === null && g.proc.signalCode === null) g.proc.kill('SIGKILL');
    }
  });

  it('is cached: a second build returns the same files', async () => {
    const again = await buildImage({});
    assert.equal(again.dir, image.dir);
    assert.equal(again.initrd, image.initrd);
    assert.ok(fs.existsSync(path.join(image.dir, 'manifest.json')));
  });

  it('boots on q35, runs commands through the agent, and is killed cleanly', async () => {
    const g = await boot(image, ['-M', 'q35', '-m', '1G']);
    guests.push(g);
    console.log(`# q35 boot to MEMFABRIC-READY: ${(g.bootMs / 1000).toFixed(1)} s`);
    const lspci = await guestExec(g.sock, ['lspci', '-n'], 30_000);
    assert.equal(lspci.exitCode, 0, lspci.stderr);
    assert.match(lspci.stdout, /8086:29c0/);
    const names = await guestExec(g.sock, ['lspci', '-s', '00:00.0'], 30_000);
    assert.match(names.stdout, /Host bridge: Intel Corporation/, 'pci.ids is in the image');
    const exit3 = await guestExec(g.sock, ['sh', '-c', 'exit 3'], 30_000);
    assert.equal(exit3.exitCode, 3);
    const bytes = await guestExec(g.sock, ['sh', '-c', 'printf "MFEXIT x 0\\n\\001\\377"; echo oops >&2', '', 'ignored'], 30_000);
    assert.equal(bytes.exitCode, 0);
    assert.equal(bytes.stdout.slice(0, 11), 'MFEXIT x 0\n');
    assert.equal(bytes.stderr, 'oops\n');
    const missing = await guestExec(g.sock, ['no-such-command'], 30_000);
    assert.equal(missing.exitCode, 127);
    await stop(g);
  });

  it('boots with the CXL reference topology and cxl list -M shows one memdev', async () => {
    const g = await boot(image, ['-M', 'q35,cxl=on', '-m', '1G,maxmem=4G,slots=4'], (dir) => [
      '-object', `memory-backend-file,id=cxl-mem1,share=on,mem-path=${path.join(dir, 'cxltest.raw')},size=256M`,
      '-object', `memory-backend-file,id=cxl-lsa1,share=on,mem-path=${path.join(dir, 'lsa.raw')},size=256M`,
      '-device', 'pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1',
      '-device', 'cxl-rp,port=0,bus=cxl.1,id=root_port13,chassis=0,slot=2',
      '-device', 'cxl-type3,bus=root_port13,memdev=cxl-mem1,lsa=cxl-lsa1,id=cxl-pmem0',
      '-M', 'cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G',
    ]);
    guests.push(g);
    console.log(`# q35+CXL boot to MEMFABRIC-READY: ${(g.bootMs / 1000).toFixed(1)} s`);
    // device probing can finish slightly after the modules are loaded: retry briefly
    let out = '';
    for (let i = 0; i < 10; i++) {
      const r = await guestExec(g.sock, ['cxl', 'list', '-M'], 30_000);
      out = r.stdout;
      if (r.exitCode === 0 && out.includes('"memdev"')) break;
      await sleep(1000);
    }
    const memdevs = JSON.parse(out) as Array<{ memdev?: string }>;
    assert.equal(memdevs.filter((m) => m.memdev).length, 1, out);
    await stop(g);
  });
});

describe('package versions (apt asked once while its state stays)', () => {
  it('aptStamp changes with a file\'s size or time and with an entry added below a directory, and only then', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memfabric-aptstamp-'));
    try {
      fs.mkdirSync(path.join(dir, 'etc', 'sources.list.d'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'status'), 'Package: a\n');
      fs.writeFileSync(path.join(dir, 'etc', 'sources.list.d', 'a.list'), 'deb http://x/debian bookworm main\n');
      const at = (): string => aptStamp([[path.join(dir, 'status'), 0], [path.join(dir, 'etc'), 2], [path.join(dir, 'lists'), 1]]);
      const s0 = at();
      assert.equal(at(), s0, 'nothing changed');
      fs.writeFileSync(path.join(dir, 'etc', 'sources.list.d', 'b.list'), 'deb http://y/debian bookworm main\n');
      const s1 = at();
      assert.notEqual(s1, s0, 'a source added two levels down');
      fs.utimesSync(path.join(dir, 'status'), new Date(), new Date(Date.now() + 10_000));
      const s2 = at();
      assert.notEqual(s2, s1, 'the dpkg status touched');
      fs.mkdirSync(path.join(dir, 'lists'));
      assert.notEqual(at(), s2, 'the lists appeared');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resolvePackages asks apt-cache the first time, answers the same without it while apt\'s state stays, and asks again when its kept stamp differs', { skip: !fs.existsSync('/usr/bin/apt-cache') && 'no apt-cache' }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memfabric-resolve-'));
    const oldPath = process.env.PATH;
    try {
      // an apt-cache that counts its runs (and is the real one), first in PATH
      const bin = path.join(dir, 'bin');
      fs.mkdirSync(bin);
      const runs = path.join(dir, 'runs');
      fs.writeFileSync(path.join(bin, 'apt-cache'), `#!/bin/sh\necho run >> '${runs}'\nexec /usr/bin/apt-cache "$@"\n`, { mode: 0o755 });
      process.env.PATH = `${bin}:${oldPath}`;
      const count = (): number => (fs.existsSync(runs) ? fs.readFileSync(runs, 'utf8').split('\n').filter(Boolean).length : 0);
      const cacheRoot = path.join(dir, 'cache');
      const first = await resolvePackages('6.1', { cacheRoot });
      assert.ok(count() >= 2, `apt-cache ran ${count()} times`);
      assert.match(first.kernelPackage, /^linux-image-6\.1\./);
      assert.ok(first.list.some((e) => /^busybox-static=/.test(e)));
      const asked = count();
      const again = await resolvePackages('6.1', { cacheRoot });
      assert.deepEqual(again, first);
      assert.equal(count(), asked, 'not asked again');
      // what is kept was stamped with another state of apt (as after an apt-get update): asked again
      const memo = path.join(cacheRoot, 'apt', 'resolved-6.1.json');
      fs.writeFileSync(memo, JSON.stringify({ ...JSON.parse(fs.readFileSync(memo, 'utf8')), stamp: 'another state' }));
      assert.deepEqual(await resolvePackages('6.1', { cacheRoot }), first);
      assert.ok(count() > asked, 'asked again');
    } finally {
      process.env.PATH = oldPath;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('systemApt', () => {
  it("runs apt-config once while what its answer comes from stays the same, and again when that changes", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memfabric-aptcfg-'));
    const oldPath = process.env.PATH;
    const oldConf = process.env.APT_CONFIG;
    try {
      // an apt-config first in PATH that counts its runs and names a configuration directory of the test's
      const bin = path.join(dir, 'bin');
      const etc = path.join(dir, 'etc');
      fs.mkdirSync(bin);
      fs.mkdirSync(path.join(etc, 'apt.conf.d'), { recursive: true });
      fs.writeFileSync(path.join(etc, 'apt.conf.d', '10memfabric'), 'Acquire::Retries "1";\n');
      const runs = path.join(dir, 'runs');
      const tool = path.join(bin, 'apt-config');
      fs.writeFileSync(tool, `#!/bin/sh\necho run >> '${runs}'\necho "P=''"\necho "L='/var/lib/apt/lists/'"\necho "S='/var/lib/dpkg/status'"\necho "E='${etc}/'"\n`, { mode: 0o755 });
      process.env.PATH = `${bin}:${oldPath}`;
      delete process.env.APT_CONFIG;
      const count = () => fs.readFileSync(runs, 'utf8').split('\n').filter(Boolean).length;
      const cache = path.join(dir, 'cache');
      const want = { args: ['-o', `Dir::Cache::pkgcache=${path.join(cache, 'apt', 'system-pkgcache.bin')}`], state: { lists: '/var/lib/apt/lists/', status: '/var/lib/dpkg/status', etc: `${etc}/` } };
      assert.deepEqual(systemApt(cache), want);
      assert.deepEqual(systemApt(cache), want, 'the kept answer is the same answer');
      assert.equal(count(), 1, 'asked once');
      // a configuration file of the directory it named, edited
      fs.appendFileSync(path.join(etc, 'apt.conf.d', '10memfabric'), 'Acquire::Retries "2";\n');
      fs.utimesSync(path.join(etc, 'apt.conf.d', '10memfabric'), new Date(2021, 0, 1), new Date(2021, 0, 1));
      systemApt(cache);
      assert.equal(count(), 2, 'asked again after an edit in Dir::Etc');
      // APT_CONFIG set
      const conf = path.join(dir, 'apt.conf');
      fs.writeFileSync(conf, 'Dir::Etc "/etc/apt";\n');
      process.env.APT_CONFIG = conf;
      systemApt(cache);
      systemApt(cache);
      assert.equal(count(), 3, 'asked again once APT_CONFIG is set, then kept');
      // apt-config itself replaced (an upgraded apt)
      fs.appendFileSync(tool, '# upgraded\n');
      fs.utimesSync(tool, new Date(2022, 0, 1), new Date(2022, 0, 1));
      systemApt(cache);
      assert.equal(count(), 4, 'asked again after apt-config changed');
      // an answer that cannot be kept (the cache unwritable: a file where its directory goes) is asked each time
      const blocked = path.join(dir, 'blocked');
      fs.writeFileSync(blocked, '');
      assert.deepEqual(systemApt(blocked), { args: [] }, 'no pkgcache option where memfabric cannot keep one');
      systemApt(blocked);
      assert.equal(count(), 6);
    } finally {
      process.env.PATH = oldPath;
      if (oldConf === undefined) delete process.env.APT_CONFIG;
      else process.env.APT_CONFIG = oldConf;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('qemuVersionOf', () => {
  it('runs a binary once for its version while the file stays the same, and again once it is replaced', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memfabric-qver-'));
    try {
      const bin = path.join(dir, 'qemu-system-x86_64');
      const runs = path.join(dir, 'runs');
      const write = (v: string) => fs.writeFileSync(bin, `#!/bin/sh\necho run >> '${runs}'\necho 'QEMU emulator version ${v} (test)'\n`, { mode: 0o755 });
      const count = () => fs.readFileSync(runs, 'utf8').split('\n').filter(Boolean).length;
      write('9.1.0');
      assert.equal(qemuVersionOf(bin), '9.1.0');
      assert.equal(qemuVersionLine(bin), 'QEMU emulator version 9.1.0 (test)');
      assert.equal(count(), 1, 'asked once');
      write('10.2.1');
      assert.equal(qemuVersionOf(bin), '10.2.1');
      assert.equal(count(), 2, 'asked again after the upgrade');
      fs.writeFileSync(bin, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
      assert.equal(qemuVersionOf(bin), undefined);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps an ELF binary's answer on disk while the file is the same file, and never a script's", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memfabric-qver-'));
    const cache = path.join(dir, 'cache');
    try {
      // a real ELF binary whose --version answers: coreutils' env ("env (GNU coreutils) 9.1")
      const bin = path.join(dir, 'qemu-system-x86_64');
      fs.copyFileSync('/usr/bin/env', bin);
      fs.chmodSync(bin, 0o755);
      const real = qemuVersionLine(bin, cache);
      assert.match(real ?? '', /^env \(GNU coreutils\)/);
      const kept = fs.readdirSync(cache);
      assert.equal(kept.length, 1, 'one answer kept');
      // what is kept is what a new process reads: an answer changed on disk (same file) comes back unasked
      const entry = path.join(cache, kept[0]);
      fs.writeFileSync(entry, fs.readFileSync(entry, 'utf8').replace(real!, 'QEMU emulator version 99.0.0 (kept)'));
      forgetVersionLines();
      assert.equal(qemuVersionLine(bin, cache), 'QEMU emulator version 99.0.0 (kept)', 'read from the disk, not run');
      // the file touched (same bytes, another mtime and ctime): asked again
      fs.utimesSync(bin, new Date(2020, 0, 1), new Date(2020, 0, 1));
      forgetVersionLines();
      assert.equal(qemuVersionLine(bin, cache), real, 'asked again once the file changed');
      // replaced by another binary at the same path (a new inode): asked again
      fs.rmSync(bin);
      fs.copyFileSync('/usr/bin/printenv', bin);
      fs.chmodSync(bin, 0o755);
      forgetVersionLines();
      assert.match(qemuVersionLine(bin, cache) ?? '', /^printenv \(GNU coreutils\)/);
      // without a cache directory nothing is read or written
      forgetVersionLines();
      fs.rmSync(cache, { recursive: true });
      assert.match(qemuVersionLine(bin, null) ?? '', /^printenv /);
      assert.equal(fs.existsSync(cache), false);
      // a script is run each time and never kept
      const sh = path.join(dir, 'qemu-wrapper');
      fs.writeFileSync(sh, "#!/bin/sh\necho 'QEMU emulator version 9.1.0 (script)'\n", { mode: 0o755 });
      assert.equal(qemuVersionLine(sh, cache), 'QEMU emulator version 9.1.0 (script)');
      assert.equal(fs.existsSync(cache), false, 'a script is not kept on disk');
    } finally {
      forgetVersionLines();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
