/**
 * A private libvirtd for the tests (scripts/libvirtd-private.sh): libvirt
 * 9.0's real daemon with its own configuration and state in a temporary
 * directory, reached at qemu:///system?socket=DIR/run/libvirt-sock. The host's
 * /etc/libvirt and any daemon it runs are not touched. Stopping it kills the
 * daemon and every QEMU it started (they run in its directory's namespace),
 * then removes the directory.
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './cli';

export interface VirshRun {
  status: number;
  stdout: string;
  stderr: string;
}

export class PrivateLibvirtd {
  private constructor(
    readonly dir: string,
    readonly uri: string,
    private readonly child: ChildProcess,
  ) {}

  /** Starts one, or says why it cannot here. */
  static async start(): Promise<PrivateLibvirtd | string> {
    if (process.getuid?.() !== 0) return 'a private libvirtd needs root (a private mount namespace)';
    if (!existsSync('/usr/sbin/libvirtd')) return 'libvirtd not installed (Debian libvirt-daemon-system)';
    if (spawnSync('virsh', ['--version']).error) return 'virsh not installed (Debian libvirt-clients)';
    const dir = mkdtempSync(join(tmpdir(), 'memfabric-libvirtd-'));
    const child = spawn('bash', [join(REPO, 'scripts', 'libvirtd-private.sh'), dir], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const sock = join(dir, 'run', 'libvirt-sock');
    const uri = `qemu:///system?socket=${sock}`;
    const d = new PrivateLibvirtd(dir, uri, child);
    for (let i = 0; i < 100 && child.exitCode === null; i++) {
      if (existsSync(sock) && d.virsh('uri').status === 0) return d;
      await new Promise((r) => setTimeout(r, 100));
    }
    d.stop();
    return `the private libvirtd did not start: ${stderr.trim().split('\n').slice(-3).join(' / ')}`;
  }

  /** The daemon's read-write socket. */
  get socket(): string {
    return join(this.dir, 'run', 'libvirt-sock');
  }

  virsh(...args: string[]): VirshRun {
    const r = spawnSync('virsh', ['-q', '-c', this.uri, ...args], { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL', env: { ...process.env, LC_ALL: 'C' } });
    return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
  }

  /** Domains destroyed, then every process of the daemon's mount namespace (it, its QEMUs, capability probes), then the directory. */
  stop(): void {
    const pidFile = join(this.dir, 'libvirtd.pid');
    let ns: string | undefined;
    try {
      ns = readlinkSync(`/proc/${readFileSync(pidFile, 'utf8').trim()}/ns/mnt`);
    } catch {
      /* not running */
    }
    if (ns) for (const name of this.virsh('list', '--name').stdout.split('\n').filter(Boolean)) this.virsh('destroy', name);
    const mine = readlinkSync('/proc/self/ns/mnt');
    for (let round = 0; round < 2 && ns && ns !== mine; round++) {
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        try {
          if (readlinkSync(`/proc/${pid}/ns/mnt`) === ns) process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      spawnSync('sleep', ['0.2']);
    }
    try {
      if (this.child.pid) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}


/** A start error without the time stamps QEMU and libvirt put in it. */
export function normalizeStartError(e: string): string {
  // (Which of the two libvirt says depends on when it saw QEMU go: the same failure.)
  return e
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z /g, '')
    .replace('process exited while connecting to monitor', 'qemu unexpectedly closed the monitor')
    .replace(/\s+/g, ' ')
    .trim();
}

/** QEMU's own words in a start error: after the last "qemu-system-…: " and any "-device …: " or "-object …: " prefix. */
export function qemuWords(e: string): string | undefined {
  const i = e.lastIndexOf('qemu-system-');
  if (i < 0) return undefined;
  let rest = e.slice(i).replace(/^qemu-system-\w+: /, '');
  rest = rest.replace(/^-(?:device|object|machine|numa|m) (?:\{[^}]*\}|\S+): /, '');
  return rest.trim();
}
