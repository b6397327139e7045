/**
 * Asks a running libvirt what it makes of a domain: `virsh domxml-to-native
 * qemu-argv` parses, validates and prepares the domain as a start would,
 * and prints the QEMU command line it would run (its controllers and PCI
 * addresses, sizes in MiB, NUMA, the <qemu:commandline> arguments where it
 * puts them) or its error. Nothing is defined or started.
 *
 * Which libvirt: the URI given (`check --libvirt=URI`, the memfabric.libvirtUri
 * setting, $MEMFABRIC_LIBVIRT_URI), else $LIBVIRT_DEFAULT_URI, else
 * qemu:///system when its daemon's socket is there, else qemu:///session for
 * a user who is not root (virsh starts the session daemon itself). Without
 * any, the offline model of libvirt 9.0 is all there is, and we say so.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from '../runtime/launch';
import type { LibvirtAnswer } from '../engine/libvirt-answer';

export interface LibvirtTarget {
  uri: string;
  /** How the URI was chosen, for messages. */
  why: string;
}

const SYSTEM_SOCKETS = ['/run/libvirt/libvirt-sock', '/run/libvirt/virtqemud-sock', '/var/run/libvirt/libvirt-sock'];

/** The libvirt to ask, or why there is none. */
export function libvirtTarget(env: NodeJS.ProcessEnv = process.env, explicit?: string): LibvirtTarget | { none: string } {
  if (!findExecutable('virsh', env)) return { none: 'virsh is not installed (Debian libvirt-clients)' };
  if (explicit) return { uri: explicit, why: 'given' };
  if (env.MEMFABRIC_LIBVIRT_URI) return { uri: env.MEMFABRIC_LIBVIRT_URI, why: 'MEMFABRIC_LIBVIRT_URI' };
  if (env.LIBVIRT_DEFAULT_URI) return { uri: env.LIBVIRT_DEFAULT_URI, why: 'LIBVIRT_DEFAULT_URI' };
  if (SYSTEM_SOCKETS.some((s) => existsSync(s))) return { uri: 'qemu:///system', why: 'the system daemon is running' };
  if (process.getuid?.() !== 0 && findExecutable('libvirtd', { PATH: `${env.PATH ?? ''}:/usr/sbin:/sbin` })) return { uri: 'qemu:///session', why: 'no system daemon; the session daemon starts on demand' };
  return { none: 'no libvirtd is running (qemu:///system has no socket)' };
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** virsh -q -c URI ARGS… (an argv array), its status and output; killed after timeoutMs. */
export function virsh(uri: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('virsh', ['-q', '-c', uri, ...args], { env: { ...env, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      stderr += `\nerror: no answer from ${uri} within ${timeoutMs / 1000} s`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ status: -1, stdout, stderr: `error: ${e.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}

/** libvirt's reason, without virsh's "error: Failed to …" line. */
export function virshError(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith('error: ') && !/^error: Failed to /.test(l));
  return (lines[lines.length - 1] ?? stderr.trim()).replace(/^error: /, '').trim();
}

const versions = new Map<string, Promise<string | undefined>>();

/** "9.0.0" from `virsh version` (the library the daemon runs), kept per URI. */
export function libvirtVersion(uri: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  let v = versions.get(uri);
  if (!v) {
    v = virsh(uri, ['version', '--daemon'], env, 30_000).then((r) => /Running against daemon: (\S+)/.exec(r.stdout)?.[1] ?? /Using library: libvirt (\S+)/.exec(r.stdout)?.[1]);
    versions.set(uri, v);
  }
  return v;
}

/** Whether the libvirt at uri answers at all (its daemon runs and lets us in): undefined, or why not. */
export async function libvirtUnreachable(uri: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const r = await virsh(uri, ['uri'], env, 30_000);
  return r.status === 0 ? undefined : virshError(r.stderr) || `virsh exited with ${r.status}`;
}

/**
 * libvirt's command line for a domain (its XML text), or its refusal. The
 * text goes to virsh in a private temporary file; virsh sends it to the
 * daemon, which never reads our files.
 */
export async function domxmlToNative(text: string, target: LibvirtTarget, env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<LibvirtAnswer> {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-libvirt-'));
  try {
    const file = join(dir, 'domain.xml');
    writeFileSync(file, text, { mode: 0o600 });
    const [r, version] = await Promise.all([virsh(target.uri, ['domxml-to-native', 'qemu-argv', file], env, timeoutMs), libvirtVersion(target.uri, env)]);
    if (r.status === 0 && /qemu-system-|\bqemu-kvm\b/.test(r.stdout)) return { ok: true, uri: target.uri, version, argv: r.stdout.trim() };
    return { ok: false, uri: target.uri, version, error: virshError(r.stderr) || `virsh exited with ${r.status}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether a libvirt error is about reaching libvirt rather than about the domain. */
export function isConnectionError(error: string): boolean {
  return /Failed to connect socket|failed to connect to the hypervisor|no connection driver available|authentication failed|no answer from .* within|Cannot recv data|End of file while reading data/i.test(error);
}
