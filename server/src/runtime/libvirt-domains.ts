/**
 * The libvirt backend's hands (runtime/cluster.ts): a node is a libvirt domain
 * that memfabric defines, starts, asks and removes through virsh (argv arrays)
 * on a connection URI, so that `virsh list` and virt-manager show it and QEMU
 * runs under libvirt's control. Guest commands go over QEMU's guest agent
 * through libvirt (`virsh qemu-agent-command`, virDomainQemuAgentCommand):
 * libvirt owns the agent's socket.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { virsh, virshError } from '../host/libvirt';
import { AgentCommand, GuestAgentError, Json } from './agent';

const T = 60_000;

/** A domain name for a node of a cluster: unique per run directory (user, cluster file) and node. */
export function domainName(runDir: string, node: string): string {
  return `mf-${createHash('sha256').update(runDir).digest('hex').slice(0, 8)}-${node.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

/** Define the domain from its XML and start it; libvirt's error if either fails (then nothing is left defined). */
export async function defineAndStart(uri: string, name: string, xml: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-domain-'));
  try {
    const f = join(dir, `${name}.xml`);
    writeFileSync(f, xml, { mode: 0o600 });
    const def = await virsh(uri, ['define', f], env, T);
    if (def.status !== 0) return `libvirt refuses to define ${name}: ${virshError(def.stderr)}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const st = await virsh(uri, ['start', name], env, T);
  if (st.status !== 0) {
    await virsh(uri, ['undefine', name], env, T);
    return `libvirt cannot start ${name}: ${virshError(st.stderr).replace(/\d{4}-\d\d-\d\dT[\d:.]+Z /g, '')}`;
  }
  return undefined;
}

/** 'running', 'paused', 'shut off' … as virsh domstate says, or undefined when no such domain is defined. */
export async function domainState(uri: string, name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const r = await virsh(uri, ['domstate', name], env, T);
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** domainState for the synchronous status paths (one virsh run, ~20 ms). */
export function domainStateSync(uri: string, name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const r = spawnSync('virsh', ['-q', '-c', uri, 'domstate', name], { encoding: 'utf8', env: { ...env, LC_ALL: 'C' }, timeout: T, killSignal: 'SIGKILL' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Stop (destroy) and remove (undefine) the domain; what happened. */
export async function destroyAndUndefine(uri: string, name: string, graceMs: number, env: NodeJS.ProcessEnv = process.env): Promise<'destroyed' | 'not running'> {
  const state = await domainState(uri, name, env);
  if (state === undefined) return 'not running';
  let how: 'destroyed' | 'not running' = 'not running';
  if (state !== 'shut off') {
    // A graceful destroy first (SIGTERM to QEMU), then a forced one if QEMU does not go.
    const g = await virsh(uri, ['destroy', name, '--graceful'], env, graceMs + T);
    if (g.status !== 0) await virsh(uri, ['destroy', name], env, T);
    how = 'destroyed';
  }
  await virsh(uri, ['undefine', name], env, T);
  return how;
}

/** One guest agent command through libvirt. */
export function agentOverLibvirt(uri: string, name: string, env: NodeJS.ProcessEnv = process.env): AgentCommand {
  return async (execute: string, args?: Json) => {
    const r = await virsh(uri, ['qemu-agent-command', name, '--timeout', '30', JSON.stringify(args ? { execute, arguments: args } : { execute })], env, T);
    if (r.status !== 0) {
      const e = virshError(r.stderr);
      // "internal error: unable to execute QEMU agent command 'guest-exec': Failed to execute child process …"
      const m = /unable to execute QEMU agent command '[^']+': (.*)$/.exec(e);
      if (m) throw new GuestAgentError('GenericError', m[1]);
      throw new Error(`virsh qemu-agent-command ${name}: ${e}`);
    }
    return (JSON.parse(r.stdout) as { return: unknown }).return;
  };
}
