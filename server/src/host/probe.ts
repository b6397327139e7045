/** The real host behind the engine's HostProbe (file sizes for backing-file rules). */
import { statSync } from 'node:fs';
import { HostProbe } from '../engine/rules/rule';

export const nodeHost: HostProbe = {
  real: true,
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

/**
 * nodeHost with answers kept for ttlMs: the language server analyzes on every
 * pause in typing, and a 40-node cluster names hundreds of backing files; a
 * file created, grown or removed on disk is seen within ttlMs. All answers
 * are dropped together, so that while none is (one generation) an analysis
 * may take every answer of the last one as still true.
 */
export function cachedHost(ttlMs: number, host: HostProbe = nodeHost, now: () => number = Date.now): HostProbe {
  let seen = new Map<string, ReturnType<HostProbe['stat']>>();
  let gen = 0;
  let since = -Infinity;
  const current = () => {
    const t = now();
    if (t - since >= ttlMs || t < since) {
      seen = new Map();
      gen++;
      since = t;
    }
  };
  return {
    real: host.real,
    stat(path: string) {
      current();
      if (seen.has(path)) return seen.get(path);
      const r = host.stat(path);
      seen.set(path, r);
      return r;
    },
    generation() {
      current();
      return gen;
    },
  };
}
