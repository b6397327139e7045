import { Rule } from './rule';
import { alignUp, qemuSizeString } from '../text/sizes';
import { qemuAtLeast } from '../qemu/profile';
import { backendOffset, backingStoreText, hexHuman, isOn, qemuName, sizeOf } from './util';
import { resolvePath } from './paths';
import { prop } from '../model/model';

const PAGE = 4096n;

/**
 * A backend that maps a file descriptor must be a whole number of pages (4 KiB
 * here; hugetlbfs files and hugetlb memfds are not judged).
 *  - memory-backend-memfd, every version: hostmem-memfd.c creates the memfd
 *    at size= exactly, then qemu_ram_alloc_from_fd() rounds the mapping up
 *    to the page and finds the memfd too small ("backing store size ...").
 *  - memory-backend-file, QEMU 9.1 and later: backends/hostmem.c
 *    host_memory_backend_memory_complete() refuses a size that is not a
 *    multiple of the page ("backend->aligned"); QEMU 7.2 starts.
 */
export const rule: Rule = {
  code: 'backend-size-page-multiple',
  severity: 'error',
  summary:
    'The size of a memory-backend-memfd (every version) or memory-backend-file (QEMU 9.1 and later) must be a multiple of the 4 KiB page.',
  enforcedBy: "backend 'memory-backend-file' memory size must be multiple of 4 KiB (file, 9.1 and later) / backing store size 0xf4240 does not match 'size' option 0xf5000 (memfd, QEMU 7.2)",
  check({ node, host, qemu, report }) {
    for (const b of node.backends.values()) {
      const s = sizeOf(b.size);
      if (s === undefined || s === 0n || s % PAGE === 0n) continue;
      const up = alignUp(s, PAGE);
      let text: string;
      if (b.obj.qomType === 'memory-backend-memfd') {
        if (isOn(prop(b.obj.props, 'hugetlb'))) continue;
        text = backingStoreText(qemu, b.id, s, up, 0n);
      } else if (b.obj.qomType === 'memory-backend-file' && qemuAtLeast(qemu, '9.1')) {
        // A non-empty file smaller than the backend is refused first (backing-file-size).
        const st = b.memPath && host.stat(resolvePath(node.baseDir, b.memPath.text));
        if (st && st.isFile && st.size > 0n && st.size < backendOffset(b, qemu) + up) continue;
        text = `backend 'memory-backend-file' memory size must be multiple of 4 KiB`;
      } else continue;
      report({
        span: b.size!.m.span(),
        message: `${b.obj.qomType} '${b.id}' has size ${hexHuman(s)}, not a multiple of the 4 KiB page (0x1000): ${b.obj.qomType === 'memory-backend-memfd' ? `QEMU makes the memfd ${hexHuman(s)} but maps ${hexHuman(up)}` : 'the file is mapped in whole pages'}; the nearest larger size is ${hexHuman(up)}. QEMU: "${text}" (${qemuName(qemu)})`,
        fixes: [{ title: `Round up to ${qemuSizeString(up)}`, edits: [{ span: b.size!.m.span(), newText: qemuSizeString(up) }] }],
      });
    }
  },
};
