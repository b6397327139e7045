/**
 * A private sshd on the loopback address for the tests of other hosts (issue 15):
 * its own host key, a client key it generates, its own config and pid file in a
 * temporary directory; root may log in with that key only. libvirt reaches a
 * daemon through it as it would a lab host: qemu+ssh://root@127.0.0.1:PORT/system.
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class PrivateSshd {
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly key: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(): Promise<PrivateSshd | string> {
    if (process.getuid?.() !== 0) return 'the loopback sshd logs in as root: needs root';
    if (!existsSync('/usr/sbin/sshd')) return 'sshd not installed (Debian openssh-server)';
    if (spawnSync('nc', ['-h']).error) return "nc not installed (Debian netcat-openbsd, libvirt's ssh transport uses it)";
    const dir = mkdtempSync(join(tmpdir(), 'memfabric-sshd-'));
    chmodSync(dir, 0o700);
    for (const k of ['hostkey', 'userkey']) spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, k)]);
    copyFileSync(join(dir, 'userkey.pub'), join(dir, 'authorized_keys'));
    // The ssh that libvirt runs (from PATH): this host key is new every time, and root's known_hosts is not ours to fill.
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'ssh'), '#!/bin/sh\nexec /usr/bin/ssh -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR "$@"\n', { mode: 0o755 });
    mkdirSync('/run/sshd', { recursive: true });
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = 20000 + Math.floor(Math.random() * 20000);
      writeFileSync(join(dir, 'sshd_config'), [
        `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'hostkey')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no',
        `PidFile ${join(dir, 'sshd.pid')}`, '',
      ].join('\n'));
      const child = spawn('/usr/sbin/sshd', ['-D', '-f', join(dir, 'sshd_config'), '-E', join(dir, 'sshd.log')], { stdio: 'ignore' });
      for (let i = 0; i < 50 && child.exitCode === null; i++) {
        if (existsSync(join(dir, 'sshd.log')) && readFileSync(join(dir, 'sshd.log'), 'utf8').includes('Server listening')) return new PrivateSshd(dir, port, join(dir, 'userkey'), child);
        await new Promise((r) => setTimeout(r, 100));
      }
      child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
    return 'the loopback sshd did not start';
  }

  /** PATH with the ssh wrapper first: give it to whatever runs virsh over this sshd. */
  get path(): string {
    return `${join(this.dir, 'bin')}:${process.env.PATH ?? ''}`;
  }

  /** A qemu+ssh URI to the libvirtd listening on socket, through this sshd. */
  uri(socket: string): string {
    return `qemu+ssh://root@127.0.0.1:${this.port}/system?socket=${socket}&keyfile=${this.key}&no_verify=1&proxy=netcat`;
  }

  stop(): void {
    this.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
