import { Rule } from './rule';
import { deviceHasProp } from '../qemu/catalog';
import { MiB, alignUp, qemuSizeString } from '../text/sizes';
import { devInt, hexHuman, linkedBackend, qemuName, sizeOf } from './util';

const MULT = 256n * MiB; // CXL_CAPACITY_MULTIPLIER

/**
 * hw/mem/cxl_type3.c cxl_create_dc_regions(), QEMU 9.1 and later: the
 * volatile-dc-memdev backend is split into num-dc-regions equal regions, and
 * its size must be a multiple of num-dc-regions × 256 MiB (each region a
 * whole number of 256 MiB). QEMU prints the region length it computed
 * (size / regions, rounded up).
 */
export const rule: Rule = {
  code: 'cxl-dc-region-size',
  severity: 'error',
  summary:
    'The volatile-dc-memdev backend of a cxl-type3 device (QEMU 9.1 and later) is split into num-dc-regions equal regions of whole 256 MiB units: its size must be a multiple of num-dc-regions × 256 MiB.',
  enforcedBy: 'backend size is not multiple of region len: 0x8000000',
  check({ node, qemu, report }) {
    if (!deviceHasProp(qemu, 'cxl-type3', 'num-dc-regions')) return;
    for (const d of node.devices) {
      if (d.driver !== 'cxl-type3') continue;
      const n = devInt(d, 'num-dc-regions');
      if (!n) continue;
      const link = linkedBackend(node, d, 'volatile-dc-memdev');
      const size = link && sizeOf(link.b.size);
      if (!link || size === undefined || size === 0n) continue;
      const unit = BigInt(n) * MULT;
      if (size % unit === 0n) continue;
      const regionLen = (size + BigInt(n) - 1n) / BigInt(n);
      const up = alignUp(size, unit);
      report({
        span: link.b.size!.m.span(),
        message: `Backend '${link.b.id}' is the dynamic capacity of cxl-type3${d.id ? ` '${d.id.text}'` : ''}, split into num-dc-regions=${n} regions: its size ${hexHuman(size)} must be a multiple of ${n} × 256 MiB = ${hexHuman(unit)} (each region ${hexHuman(regionLen)} now; the nearest larger size is ${hexHuman(up)}). QEMU: "backend size is not multiple of region len: 0x${regionLen.toString(16)}" (${qemuName(qemu)})`,
        related: [{ span: link.p.value.span(), message: `volatile-dc-memdev of ${d.id ? `'${d.id.text}'` : 'cxl-type3'}` }],
        fixes: [{ title: `Round up to ${qemuSizeString(up)}`, edits: [{ span: link.b.size!.m.span(), newText: qemuSizeString(up) }] }],
      });
    }
  },
};
