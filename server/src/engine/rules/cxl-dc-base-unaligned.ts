import { Rule } from './rule';
import { deviceHasProp } from '../qemu/catalog';
import { MiB, alignUp, qemuSizeString } from '../text/sizes';
import { devInt, hexHuman, linkedBackend, qemuName, sizeOf } from './util';

const MULT = 256n * MiB; // CXL_CAPACITY_MULTIPLIER

/**
 * hw/mem/cxl_type3.c cxl_create_dc_regions(), QEMU 9.1 and later: the
 * dynamic-capacity regions follow the device's static capacity in its DPA
 * space (volatile-memdev, then memdev/persistent-memdev), and their base,
 * the sum of those sizes, must be 256 MiB aligned.
 */
export const rule: Rule = {
  code: 'cxl-dc-base-unaligned',
  severity: 'error',
  summary:
    'The dynamic-capacity regions of a cxl-type3 device (QEMU 9.1 and later) start after its static capacity (volatile plus persistent backend sizes), which must therefore be a multiple of 256 MiB.',
  enforcedBy: 'DC region base not aligned to 0x10000000',
  check({ node, qemu, report }) {
    if (!deviceHasProp(qemu, 'cxl-type3', 'num-dc-regions')) return;
    for (const d of node.devices) {
      if (d.driver !== 'cxl-type3' || !devInt(d, 'num-dc-regions') || !linkedBackend(node, d, 'volatile-dc-memdev')) continue;
      const statics = ['volatile-memdev', 'persistent-memdev', 'memdev']
        .map((k) => linkedBackend(node, d, k))
        .filter((l) => l !== undefined);
      const sizes = statics.map((l) => sizeOf(l.b.size));
      if (!statics.length || sizes.some((s) => s === undefined)) continue;
      const base = sizes.reduce((a, b) => a! + b!, 0n)!;
      if (base % MULT === 0n) continue;
      const odd = statics.find((l) => sizeOf(l.b.size)! % MULT !== 0n) ?? statics[statics.length - 1];
      const oddSize = sizeOf(odd.b.size)!;
      const up = alignUp(oddSize, MULT);
      report({
        span: odd.b.size!.m.span(),
        message: `cxl-type3${d.id ? ` '${d.id.text}'` : ''} places its dynamic-capacity regions after its static capacity of ${hexHuman(base)} (${statics.map((l) => `${l.p.key} '${l.b.id}' ${hexHuman(sizeOf(l.b.size)!)}`).join(' + ')}), which is not a multiple of 256 MiB (0x10000000): make backend '${odd.b.id}' ${hexHuman(up)}. QEMU: "DC region base not aligned to 0x10000000" (${qemuName(qemu)})`,
        related: statics.map((l) => ({ span: l.p.value.span(), message: `${l.p.key}, ${hexHuman(sizeOf(l.b.size)!)}` })),
        fixes: [{ title: `Round up to ${qemuSizeString(up)}`, edits: [{ span: odd.b.size!.m.span(), newText: qemuSizeString(up) }] }],
      });
    }
  },
};
