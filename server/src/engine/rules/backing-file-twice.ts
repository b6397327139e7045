import { Rule } from './rule';
import { alignUp } from '../text/sizes';
import { hexHuman, sizeOf } from './util';
import { resolvePath } from './paths';
import { MemoryBackend } from '../model/model';

export const rule: Rule = {
  code: 'backing-file-twice',
  severity: 'error',
  summary:
    'Two file backends of one node on the same file: QEMU creates the backends in command-line order, the first one sizes a new (or empty) file to its own size, and a later, larger one then finds the file too small and QEMU refuses to start. (An existing file is backing-file-size; nodes that disagree are fabric-region-mismatch.)',
  enforcedBy: "backing store size 0x40000000 does not match 'size' option 0x80000000",
  check({ node, host, report }) {
    // Per file: the backend that sized it, while no file of a size of its own is there.
    const sizedBy = new Map<string, { b: MemoryBackend; size: bigint }>();
    for (const b of node.backends.values()) {
      if (b.obj.qomType !== 'memory-backend-file' || !b.memPath) continue;
      const s = sizeOf(b.size);
      if (s === undefined || s === 0n) continue;
      const want = alignUp(s, 4096n);
      const path = resolvePath(node.baseDir, b.memPath.text);
      const first = sizedBy.get(path);
      if (!first) {
        const st = host.stat(path);
        // (A directory gets a new file per backend; a device or a non-empty file keeps its size: backing-file-size.)
        if (st && (!st.isFile || st.size > 0n)) continue;
        sizedBy.set(path, { b, size: want });
        continue;
      }
      if (want <= first.size) continue;
      report({
        span: b.size!.m.span(),
        message: `Backend '${b.id}' maps ${b.memPath.text} with size ${hexHuman(s)}, but backend '${first.b.id}' of this node opens the same file first and makes it ${hexHuman(first.size)}: QEMU refuses to start (it never grows a non-empty file). QEMU: "backing store size 0x${first.size.toString(16)} does not match 'size' option 0x${want.toString(16)}". Give each backend its own file, or the same size.`,
        related: [{ span: first.b.size!.m.span(), message: `backend '${first.b.id}' creates the file at ${hexHuman(first.size)}` }],
      });
    }
  },
};
