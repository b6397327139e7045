/** The real host behind the engine's HostProbe (file sizes for backing-file rules). */
import { statSync } from 'node:fs';
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
