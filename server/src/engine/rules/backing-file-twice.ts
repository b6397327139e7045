import { Rule } from './rule';
import { alignUp } from '../text/sizes';
import { backendOffset, backingStoreText, hexHuman, qemuName, sizeOf } from './util';
import { resolvePath } from './paths';
import { MemoryBackend } from '../model/model';

/**
 * qemu_ram_alloc_from_fd() / file_ram_alloc(): the first backend to open a
 * new or empty file truncates it to its own end (size, from QEMU 8.1 plus
 * offset=); a later backend of the same node on that file is not allowed to
 * grow it.
 */
export const rule: Rule = {
  code: 'backing-file-twice',
  severity: 'error',
  summary:
    'Two file backends of one node on the same file: QEMU creates the backends in command-line order, the first one sizes a new (or empty) file to its own end (size, from 8.1 plus offset=), and a later one that reaches further finds the file too small and QEMU refuses to start. (An existing file is backing-file-size; nodes that disagree are fabric-region-mismatch.)',
  enforcedBy: "backing store size 0x40000000 does not match 'size' option 0x80000000 (QEMU 7.2) / fam2 backing store size 0x40000000 is too small for 'size' option 0x80000000 plus 'offset' option 0x0 (8.1 and later)",
  check({ node, host, qemu, report }) {
    // Per file: the backend that sized it, while no file of a size of its own is there.
    const sizedBy = new Map<string, { b: MemoryBackend; end: bigint }>();
    for (const b of node.backends.values()) {
      if (b.obj.qomType !== 'memory-backend-file' || !b.memPath) continue;
      const s = sizeOf(b.size);
      if (s === undefined || s === 0n) continue;
      const want = alignUp(s, 4096n);
      const offset = backendOffset(b, qemu);
      const end = offset + want;
      const path = resolvePath(node.baseDir, b.memPath.text);
      const first = sizedBy.get(path);
      if (!first) {
        const st = host.stat(path);
        // (A directory gets a new file per backend; a device or a non-empty file keeps its size: backing-file-size.)
        if (st && (!st.isFile || st.size > 0n)) continue;
        sizedBy.set(path, { b, end });
        continue;
      }
      if (end <= first.end) continue;
      report({
        span: b.size!.m.span(),
        message: `Backend '${b.id}' maps ${b.memPath.text} with size ${hexHuman(s)}${offset ? ` at offset ${hexHuman(offset)} (up to ${hexHuman(end)})` : ''}, but backend '${first.b.id}' of this node opens the same file first and makes it ${hexHuman(first.end)}: ${qemuName(qemu)} refuses to start (it never grows a non-empty file). QEMU: "${backingStoreText(qemu, b.id, first.end, want, offset)}" (${qemuName(qemu)}). Give each backend its own file, or ${offset ? 'sizes and offsets that fit in the first' : 'the same size'}.`,
        related: [{ span: first.b.size!.m.span(), message: `backend '${first.b.id}' creates the file at ${hexHuman(first.end)}` }],
      });
    }
  },
};
