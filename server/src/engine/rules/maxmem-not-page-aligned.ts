import { Rule } from './rule';
import { alignUp, qemuSizeString } from '../text/sizes';
import { hexHuman, sizeOf } from './util';

export const rule: Rule = {
  code: 'maxmem-not-page-aligned',
  severity: 'error',
  summary: 'maxmem must be a multiple of the host page size (4 KiB). Note that maxmem without a suffix is in bytes, unlike -m.',
  enforcedBy: 'maximum memory size must by aligned to multiple of 4096 bytes',
  check({ node, report }) {
    const max = sizeOf(node.memory.maxmem);
    if (max === undefined || max % 4096n === 0n) return;
    const bare = /^\d+$/.test(node.memory.maxmem!.m.text);
    report({
      span: node.memory.maxmem!.m.span(),
      message: `maxmem ${hexHuman(max)} is not a multiple of 4 KiB${bare ? ` (maxmem without a suffix is in bytes; did you mean ${node.memory.maxmem!.m.text}M?)` : ''}. QEMU: "maximum memory size must by aligned to multiple of 4096 bytes"`,
      fixes: [{ title: `Round up to ${qemuSizeString(alignUp(max, 4096n))}`, edits: [{ span: node.memory.maxmem!.m.span(), newText: qemuSizeString(alignUp(max, 4096n)) }] }],
    });
  },
};
