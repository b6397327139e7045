import { Rule } from './rule';
import { isPow2 } from '../text/sizes';
import { hexHuman, sizeOf } from './util';

export const rule: Rule = {
  code: 'backend-align-pow2',
  severity: 'error',
  summary: 'A file backend align= must be a power of two and a multiple of the page size (4 KiB for regular files).',
  enforcedBy: 'alignment 0x3000 must be a power of two',
  check({ node, report }) {
    for (const b of node.backends.values()) {
      const a = sizeOf(b.align);
      if (a === undefined || a === 0n) continue;
      if (!isPow2(a)) report({ span: b.align!.m.span(), message: `align ${hexHuman(a)} is not a power of two. QEMU: "alignment 0x${a.toString(16)} must be a power of two"` });
      else if (a < 4096n) report({ span: b.align!.m.span(), message: `align ${hexHuman(a)} is smaller than the 4 KiB page size. QEMU: "alignment 0x${a.toString(16)} must be multiples of page size 0x1000"` });
    }
  },
};
