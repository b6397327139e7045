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
import { aptStamp, buildImage, GuestImage, guestArgv, imageKey, qemuVersionLine, qemuVersionOf, resolvePackages } from '../server/src/runtime/image';

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
});
