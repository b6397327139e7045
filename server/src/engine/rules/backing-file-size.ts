import { Rule } from './rule';
import { alignUp } from '../text/sizes';
import { hexHuman, sizeOf } from './util';
import { resolvePath } from './paths';

export const rule: Rule = {
  code: 'backing-file-size',
  severity: 'error',
  summary:
    'An existing backing file must be at least as large as the backend size (QEMU refuses a smaller one; it never grows a non-empty file). A larger file is accepted, but only its first size bytes are mapped.',
  enforcedBy: "backing store size 0x100000 does not match 'size' option 0x400000",
  check({ node, host, report }) {
    for (const b of node.backends.values()) {
      if (b.obj.qomType !== 'memory-backend-file' || !b.memPath) continue;
      const s = sizeOf(b.size);
      if (s === undefined || s === 0n) continue;
      const path = resolvePath(node.baseDir, b.memPath.text);
      const st = host.stat(path);
      if (!st || !st.isFile || st.size === 0n) continue; // QEMU creates or sizes an empty file itself
      const want = alignUp(s, 4096n);
      if (st.size < want) {
        report({
          span: b.size!.m.span(),
          message: `The existing file '${b.memPath.text}' is ${hexHuman(st.size)}, smaller than size ${hexHuman(s)}: QEMU refuses to start (it never grows a non-empty file, and memfabric never resizes user data). QEMU: "backing store size 0x${st.size.toString(16)} does not match 'size' option 0x${want.toString(16)}"`,
          related: [{ span: b.memPath.span(), message: `backing file, ${hexHuman(st.size)} on disk` }],
        });
      } else if (st.size > want) {
        report({
          severity: 'warning',
          span: b.size!.m.span(),
          message: `The existing file '${b.memPath.text}' is ${hexHuman(st.size)}, larger than size ${hexHuman(s)}: QEMU maps only the first ${hexHuman(s)}; the rest of the file is not visible to the guest.`,
          related: [{ span: b.memPath.span(), message: `backing file, ${hexHuman(st.size)} on disk` }],
        });
      }
    }
  },
};
