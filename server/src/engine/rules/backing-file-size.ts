import { Rule } from './rule';
import { alignUp } from '../text/sizes';
import { backendOffset, backingStoreText, hexHuman, qemuName, sizeOf } from './util';
import { resolvePath } from './paths';

/**
 * softmmu/physmem.c (7.2), system/physmem.c (8.1 and later)
 * qemu_ram_alloc_from_fd(): a non-empty file must hold the backend's size
 * (rounded up to the 4 KiB page) — from 8.1 plus its offset=, the position of
 * the backend's memory in the file. QEMU never grows a non-empty file.
 */
export const rule: Rule = {
  code: 'backing-file-size',
  severity: 'error',
  summary:
    'An existing backing file must be at least as large as the backend size (from QEMU 8.1 plus its offset=): QEMU refuses a smaller one and never grows a non-empty file. A larger file is accepted, but only size bytes of it are mapped.',
  enforcedBy: "backing store size 0x100000 does not match 'size' option 0x400000 (QEMU 7.2) / fam backing store size 0x100000 is too small for 'size' option 0x400000 plus 'offset' option 0x0 (8.1 and later)",
  check({ node, host, qemu, report }) {
    // Per file: the furthest any file backend of this node reaches (offset + size), so
    // a file shared out between backends (offset=, 8.1) is not called too large.
    const reach = new Map<string, bigint>();
    for (const b of node.backends.values()) {
      const s = sizeOf(b.size);
      if (b.obj.qomType !== 'memory-backend-file' || !b.memPath || !s) continue;
      const path = resolvePath(node.baseDir, b.memPath.text);
      const end = backendOffset(b, qemu) + alignUp(s, 4096n);
      if (end > (reach.get(path) ?? 0n)) reach.set(path, end);
    }
    for (const b of node.backends.values()) {
      if (b.obj.qomType !== 'memory-backend-file' || !b.memPath) continue;
      const s = sizeOf(b.size);
      if (s === undefined || s === 0n) continue;
      const path = resolvePath(node.baseDir, b.memPath.text);
      const st = host.stat(path);
      if (!st || !st.isFile || st.size === 0n) continue; // QEMU creates or sizes an empty file itself
      const want = alignUp(s, 4096n);
      const offset = backendOffset(b, qemu);
      const end = offset + want;
      const at = offset ? ` at offset ${hexHuman(offset)}` : '';
      const related = [{ span: b.memPath.span(), message: `backing file, ${hexHuman(st.size)} on disk` }];
      if (offset && b.offset) related.push({ span: b.offset.m.span(), message: `offset ${hexHuman(offset)}` });
      if (st.size < end) {
        report({
          span: b.size!.m.span(),
          message: `The existing file '${b.memPath.text}' is ${hexHuman(st.size)}, smaller than ${offset ? `offset + size = ${hexHuman(end)}` : `size ${hexHuman(s)}`}: ${qemuName(qemu)} refuses to start (it never grows a non-empty file, and memfabric never resizes user data). QEMU: "${backingStoreText(qemu, b.id, st.size, want, offset)}" (${qemuName(qemu)})`,
          related,
        });
      } else if (st.size > (reach.get(path) ?? end)) {
        report({
          severity: 'warning',
          span: b.size!.m.span(),
          message: `The existing file '${b.memPath.text}' is ${hexHuman(st.size)}, larger than ${offset ? `offset + size = ${hexHuman(end)}` : `size ${hexHuman(s)}`}: QEMU maps only ${hexHuman(s)}${at}; the rest of the file is not visible to the guest.`,
          related,
        });
      }
    }
  },
};
