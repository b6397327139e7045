/**
 * Issue 15: "a user's image that has qemu-guest-agent running". The image is
 * built from Debian packages (test/support/user-disk.ts): a raw ext4 disk with
 * busybox, Debian's qemu-guest-agent and its libraries, booted with Debian's
 * kernel and a tiny initrd that mounts /dev/vda and switch_roots into it.
 *
 * This test boots it with the system QEMU (TCG) exactly as a user would, with
 * the agent's standard port (org.qemu.guest_agent.0 on virtio-serial), and
 * speaks the real QEMU guest agent protocol over the chardev socket:
 * guest-sync-delimited, guest-ping, guest-exec + guest-exec-status.
 * Nothing of memfabric's own agent is involved. QEMU is killed (process group)
 * at the end, also on failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasQemu } from './support/cli';
import { buildUserDisk, readElfDeps } from './support/user-disk';

const QEMU = '/usr/bin/qemu-system-x86_64';
/** How long the guest may take to answer (TCG on a loaded 2-core host); overridable to test the failure path. */
const BOOT_TIMEOUT_MS = Number(process.env.MEMFABRIC_USER_DISK_BOOT_TIMEOUT_MS) || 240_000;

/** A minimal QGA client: a byte stream of JSON lines, with 0xff delimiters after guest-sync-delimited. */
class Qga {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  readonly transcript: string[] = [];
  closed = false;
  constructor(private readonly sock: net.Socket) {
    sock.on('data', (b: Buffer) => { this.buf = Buffer.concat([this.buf, b]); this.wake(); });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => { this.closed = true; this.wake(); });
  }
  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }
  private more(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.waiters.push(() => { clearTimeout(t); resolve(true); });
    });
  }
  send(obj: unknown, delimiter = false): void {
    const json = JSON.stringify(obj);
    this.transcript.push(`-> ${delimiter ? '\\xff ' : ''}${json}`);
    this.sock.write(Buffer.concat([delimiter ? Buffer.from([0xff]) : Buffer.alloc(0), Buffer.from(json + '\n')]));
  }
  /** Next JSON object in the stream (0xff bytes are recorded and skipped), or undefined after `ms`. */
  async next(ms: number): Promise<any | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      while (this.buf.length && (this.buf[0] === 0xff || this.buf[0] === 0x0a || this.buf[0] === 0x0d || this.buf[0] === 0x20)) {
        if (this.buf[0] === 0xff) this.transcript.push('<- \\xff');
        this.buf = this.buf.subarray(1);
      }
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0) {
        const line = this.buf.subarray(0, nl).toString('utf8').trim();
        this.buf = this.buf.subarray(nl + 1);
        this.transcript.push(`<- ${line}`);
        return JSON.parse(line);
      }
      const left = end - Date.now();
      if (left <= 0 || this.closed) return undefined;
      await this.more(left);
    }
  }
  async command(execute: string, args?: unknown, ms = 30_000): Promise<any> {
    this.send(args === undefined ? { execute } : { execute, arguments: args });
    const r = await this.next(ms);
    if (r === undefined) throw new Error(`QGA: no answer to ${execute} within ${ms} ms`);
    if (r.error) throw new Error(`QGA: ${execute} failed: ${JSON.stringify(r.error)}`);
    return r.return;
  }
}

function connectUnix(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    s.once('connect', () => { s.removeListener('error', reject); resolve(s); });
    s.once('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a disk image of Debian packages runs qemu-guest-agent: guest-sync-delimited, guest-ping, guest-exec answer over org.qemu.guest_agent.0',
  { skip: (!hasQemu() || !existsSync(QEMU)) && 'qemu-system-x86_64 missing', timeout: 900_000 }, async () => {
    const logLines: string[] = [];
    const log = (l: string) => { logLines.push(l); console.log(l); };
    const t0 = Date.now();
    const img = await buildUserDisk({ log });
    const buildMs = Date.now() - t0;
    log(`user-disk: ${img.cached ? 'cached' : 'built'} in ${buildMs} ms (key ${img.key}, kernel ${img.kernelRelease})`);
    log(`user-disk: disk ${img.sizes.disk} bytes (${img.sizes.diskAllocated} allocated), initrd ${img.sizes.initrd} bytes, kernel ${img.sizes.kernel} bytes`);
    const t1 = Date.now();
    const again = await buildUserDisk({ log });
    log(`user-disk: second call (cache) ${Date.now() - t1} ms`);
    assert.equal(again.cached, true);
    assert.equal(again.key, img.key);
    assert.match(img.kernelRelease, /^\d+\.\d+\.\d+-\d+-amd64$/);
    assert.ok(img.sizes.initrd < 8 * 1048576, `initrd stays small: ${img.sizes.initrd}`);

    const dir = mkdtempSync(join(tmpdir(), 'memfabric-userdisk-'));
    const disk = join(dir, 'disk.img');
    copyFileSync(img.disk, disk); // the cached disk stays pristine
    const sock = join(dir, 'qga.sock');
    const serial = join(dir, 'console.log');
    const argv = [
      '-machine', 'q35', '-m', '512', '-nographic',
      '-kernel', img.kernel, '-initrd', img.initrd, '-append', 'console=ttyS0 root=/dev/vda',
      '-drive', `file=${disk},format=raw,if=none,id=d0`, '-device', 'virtio-blk-pci,drive=d0',
      '-device', 'virtio-serial-pci',
      '-chardev', `socket,id=qga0,path=${sock},server=on,wait=off`,
      '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
      '-serial', `file:${serial}`, '-display', 'none', '-nodefaults',
    ];
    let qemu: ChildProcess | undefined;
    let qemuErr = '';
    let exited: string | undefined;
    const killQemu = () => {
      if (qemu?.pid && exited === undefined) { try { process.kill(-qemu.pid, 'SIGKILL'); } catch { /* gone */ } }
    };
    process.once('exit', killQemu);
    const consoleTail = () => { try { return readFileSync(serial, 'utf8').split('\n').slice(-40).join('\n'); } catch { return '(no console log)'; } };
    let client: Qga | undefined;
    try {
      const tBoot = Date.now();
      qemu = spawn(QEMU, argv, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
      qemu.stderr!.on('data', (b: Buffer) => { qemuErr += b; });
      qemu.on('exit', (code, sig) => { exited = `exit ${code ?? sig}`; });

      // QEMU creates the socket (server=on,wait=off)
      while (!existsSync(sock)) {
        if (exited) throw new Error(`QEMU stopped (${exited}) before creating ${sock}: ${qemuErr}`);
        if (Date.now() - tBoot > 30_000) throw new Error('QEMU did not create the agent socket in 30 s');
        await sleep(50);
      }
      client = new Qga(await connectUnix(sock));

      // guest-sync-delimited until the agent answers: it reads only once its port is open in the guest
      let synced = false;
      while (!synced) {
        if (exited) throw new Error(`QEMU stopped (${exited}) before the agent answered: ${qemuErr}\n${consoleTail()}`);
        if (client.closed) throw new Error('the agent socket closed');
        if (Date.now() - tBoot > BOOT_TIMEOUT_MS) throw new Error(`no agent answer in ${BOOT_TIMEOUT_MS} ms; console:\n${consoleTail()}`);
        client.send({ execute: 'guest-sync-delimited', arguments: { id: 1234 } }, true);
        const r = await client.next(3000);
        if (r && r.return === 1234) synced = true;
      }
      const bootMs = Date.now() - tBoot;
      // earlier, queued syncs may still be answered: one more with a fresh id flushes the stream
      client.send({ execute: 'guest-sync-delimited', arguments: { id: 5678 } }, true);
      for (;;) {
        const r = await client.next(30_000);
        if (r === undefined) throw new Error('no answer to the second guest-sync-delimited');
        if (r.return === 5678) break;
      }
      log(`user-disk: boot to agent ${bootMs} ms`);

      assert.deepEqual(await client.command('guest-ping'), {});
      const info = await client.command('guest-info');
      log(`user-disk: guest-info version ${info.version}`);
      assert.match(info.version, /^7\.2/);
      const { pid } = await client.command('guest-exec', { path: '/bin/busybox', arg: ['uname', '-r'], 'capture-output': true });
      assert.equal(typeof pid, 'number');
      let st: any;
      for (let i = 0; ; i++) {
        st = await client.command('guest-exec-status', { pid });
        if (st.exited) break;
        if (i > 300) throw new Error('guest-exec-status never said exited');
        await sleep(100);
      }
      assert.equal(st.exitcode, 0);
      const out = Buffer.from(st['out-data'] ?? '', 'base64').toString('utf8');
      assert.equal(out.trim(), img.kernelRelease);
      log(`user-disk: guest-exec uname -r -> ${JSON.stringify(out)}`);

      // the booted disk is the user's: Debian's qemu-ga, nothing of memfabric's agent
      const ps = await client.command('guest-exec', { path: '/bin/busybox', arg: ['ps'], 'capture-output': true });
      let pst: any;
      do { await sleep(100); pst = await client.command('guest-exec-status', { pid: ps.pid }); } while (!pst.exited);
      const psOut = Buffer.from(pst['out-data'] ?? '', 'base64').toString('utf8');
      assert.match(psOut, /\/usr\/sbin\/qemu-ga -m virtio-serial/);
      assert.doesNotMatch(psOut, /memfabric/i);

      log('QGA exchange:\n' + client.transcript.join('\n'));
      const con = readFileSync(serial, 'utf8');
      log('console (user-disk lines):\n' + con.split('\n').filter((l) => /user-disk|insmod|qemu-ga|EXT4-fs/.test(l)).join('\n'));
      assert.match(con, /user-disk-initrd: switch_root to \/dev\/vda/);
      assert.match(con, /user-disk: starting qemu-ga/);
    } catch (e) {
      console.log(`console tail:\n${consoleTail()}\nQEMU stderr:\n${qemuErr}`);
      if (client) console.log('QGA exchange so far:\n' + client.transcript.join('\n'));
      throw e;
    } finally {
      killQemu();
      process.removeListener('exit', killQemu);
      for (let i = 0; i < 50 && qemu && exited === undefined; i++) await sleep(100);
      rmSync(dir, { recursive: true, force: true });
    }
  });

test('the ELF reader sees qemu-ga-like DT_NEEDED and PT_INTERP on a host binary', () => {
  const d = readElfDeps(process.execPath);
  assert.ok(d, 'node is an ELF file');
  assert.ok(d!.needed.includes('libc.so.6'), JSON.stringify(d));
  assert.equal(d!.interp, '/lib64/ld-linux-x86-64.so.2');
});
