import { Rule } from './rule';
import { MiB, alignUp, qemuSizeString } from '../text/sizes';
import { linkedBackend, hexHuman, sizeOf } from './util';

export const rule: Rule = {
  code: 'cxl-type3-size-256m',
  severity: 'error',
  summary:
    'The capacity of a CXL Type 3 device (its memdev backend size) must be a non-zero multiple of 256 MiB: QEMU starts, but its mailbox answers IDENTIFY with an internal error and the guest cxl driver cannot use the device.',
  enforcedBy: 'QEMU hw/cxl/cxl-mailbox-utils.c cmd_identify_memory_device: CXL_MBOX_INTERNAL_ERROR unless size is 256 MiB aligned',
  check({ node, report }) {
    for (const d of node.devices) {
      if (d.driver !== 'cxl-type3') continue;
      const link = linkedBackend(node, d);
      if (!link) continue;
      const { p, b } = link;
      const s = sizeOf(b?.size);
      if (s === undefined || (s > 0n && s % (256n * MiB) === 0n)) continue;
      const up = alignUp(s === 0n ? 1n : s, 256n * MiB);
      report({
        span: b.size!.m.span(),
        message: `cxl-type3${d.id ? ` '${d.id.text}'` : ''} capacity ${hexHuman(s)} is not a multiple of 256 MiB: QEMU starts, but the device's mailbox fails IDENTIFY and the guest's cxl_pci driver cannot use it. Use ${hexHuman(up)}.`,
        related: [{ span: p.value.span(), message: `used as cxl-type3 memdev here` }],
        fixes: [{ title: `Round up to ${qemuSizeString(up)}`, edits: [{ span: b.size!.m.span(), newText: qemuSizeString(up) }] }],
      });
    }
  },
};
