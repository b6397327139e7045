import { Rule } from './rule';
import { MiB, alignUp, qemuSizeString } from '../text/sizes';
import { hexHuman, qemuName, sizeOf } from './util';
import { qemuAtLeast } from '../qemu/profile';

/**
 * hw/cxl/cxl-host.c cxl_fixed_memory_window_config(). QEMU 7.2's words have a
 * typo ("must my a"), fixed by 10.0; the release of the fix is not pinned
 * (VERSIONS.md), so versions from 8.0 are given 10.0's words.
 */
const TEXT_72 = 'Size of a CXL fixed memory window must my a multiple of 256MiB';
const TEXT_NEW = 'Size of a CXL fixed memory window must be a multiple of 256MiB';

export const rule: Rule = {
  code: 'cxl-fmw-size-256m',
  severity: 'error',
  summary: 'A CXL fixed memory window (cxl-fmw.N.size) must be a multiple of 256 MiB.',
  enforcedBy: `${TEXT_72} (QEMU 7.2) / ${TEXT_NEW} (10.0)`,
  check({ node, qemu, report }) {
    const text = qemuAtLeast(qemu, '8.0') ? TEXT_NEW : TEXT_72;
    for (const w of node.fmws) {
      const s = sizeOf(w.size);
      if (s === undefined || (s % (256n * MiB) === 0n && s > 0n)) continue;
      const up = alignUp(s === 0n ? 1n : s, 256n * MiB);
      report({
        span: w.size!.m.span(),
        message: `CXL window ${w.index} size ${hexHuman(s)} is not a multiple of 256 MiB (0x10000000); the nearest larger size is ${hexHuman(up)}. QEMU: "${text}" (${qemuName(qemu)})`,
        fixes: [{ title: `Round up to ${qemuSizeString(up)}`, edits: [{ span: w.size!.m.span(), newText: qemuSizeString(up) }] }],
      });
    }
  },
};
