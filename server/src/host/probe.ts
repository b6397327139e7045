/** The real host behind the engine's HostProbe (file sizes for backing-file rules). */
import { statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { HostProbe } from '../engine/rules/rule';

export const nodeHost: HostProbe = {
  stat(path: string) {
    try {
      const st = statSync(path, { bigint: true });
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
