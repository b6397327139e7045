/** The real host behind the engine's HostProbe (file sizes for backing-file rules). */
import { statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { HostProbe } from '../engine/rules/rule';

export const nodeHost: HostProbe = {
  stat(path: string) {
    try {
      // no exception for a missing file (the common case while a cluster is being written: much cheaper)
      const st = statSync(path, { bigint: true, throwIfNoEntry: false });
      if (!st) return undefined;
      return { size: st.size, isFile: st.isFile(), isDirectory: st.isDirectory(), isCharDevice: st.isCharacterDevice() };
    } catch {
      return undefined;
    }
  },
};

let qemuVersion: string | null | undefined;

/** "7.2.22" from `$MEMFABRIC_QEMU --version` (default qemu-system-x86_64; asked once), or undefined when it is not installed. */
export function installedQemuVersion(): string | undefined {
  if (qemuVersion === undefined) {
    const r = spawnSync(process.env.MEMFABRIC_QEMU?.trim() || 'qemu-system-x86_64', ['--version'], { encoding: 'utf8', timeout: 5000 });
    qemuVersion = r.status === 0 ? /version (\d+\.\d+(?:\.\d+)?)/.exec(r.stdout)?.[1] ?? null : null;
  }
  return qemuVersion ?? undefined;
}

/**
 * nodeHost with answers kept for ttlMs: the language server analyzes on every
 * pause in typing, and a 40-node cluster names hundreds of backing files; a
 * file created, grown or removed on disk is seen within ttlMs.
 */
export function cachedHost(ttlMs: number, host: HostProbe = nodeHost, now: () => number = Date.now): HostProbe {
  const seen = new Map<string, { at: number; r: ReturnType<HostProbe['stat']> }>();
  return {
    stat(path: string) {
      const t = now();
      const hit = seen.get(path);
      if (hit && t - hit.at < ttlMs) return hit.r;
      const r = host.stat(path);
      if (seen.size > 50_000) seen.clear();
      seen.set(path, { at: t, r });
      return r;
    },
  };
}
