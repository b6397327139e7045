/**
 * Cache and memo files (the guest image's apt answers, QEMU's version line
 * and profile, the probe's results): written whole or not at all, so that a
 * reader never sees half a file, whatever runs at the same time.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/**
 * Writes text to file through a temporary file in the same directory renamed
 * over it, making the directory first (private: 0700 and 0600). Returns false
 * when it cannot be written: a cache that cannot be written only costs time.
 */
export function keepFile(file: string, text: string, opts: { private?: boolean } = {}): boolean {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    mkdirSync(dir, { recursive: true, ...(opts.private ? { mode: 0o700 } : {}) });
    writeFileSync(tmp, text, opts.private ? { mode: 0o600 } : {});
    renameSync(tmp, file);
    return true;
  } catch {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // (no directory to hold it: nothing was written)
    }
    return false;
  }
}

/** memfabric's cache directory of one kind: $XDG_CACHE_HOME/memfabric/<kind>, else ~/.cache/memfabric/<kind>. */
export function memfabricCacheDir(kind: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME?.trim() || join(homedir(), '.cache'), 'memfabric', kind);
}
