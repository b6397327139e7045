import { Rule } from './rule';
import { isPow2, qemuSizeString } from '../text/sizes';
import { linkedBackend, hexHuman, sizeOf } from './util';

export const rule: Rule = {
  code: 'ivshmem-size-pow2',
  severity: 'error',
  summary: "An ivshmem device's shared memory becomes its BAR2, and a PCI BAR must be a power of two: the backend size must be one. QEMU aborts otherwise.",
  enforcedBy: "pci_register_bar: Assertion `is_power_of_2(size)' failed.",
  check({ node, qemu, report }) {
    for (const d of node.devices) {
      if (d.driver !== 'ivshmem-plain') continue;
      const link = linkedBackend(node, d);
      if (!link) continue;
      const { p, b } = link;
      const s = sizeOf(b?.size);
      if (s === undefined || s === 0n || isPow2(s)) continue;
      let up = 1n;
      while (up < s) up <<= 1n;
      const down = up >> 1n;
      report({
        span: b.size!.m.span(),
        message: `ivshmem BAR2 would be ${hexHuman(s)}, not a power of two: QEMU ${qemu.version} aborts (core dump) at start. Use ${hexHuman(down)} or ${hexHuman(up)}. QEMU: "pci_register_bar: Assertion \`is_power_of_2(size)' failed."`,
        related: [{ span: p.value.span(), message: `shared through ivshmem here` }],
        fixes: [
          { title: `Round up to ${qemuSizeString(up)}`, edits: [{ span: b.size!.m.span(), newText: qemuSizeString(up) }] },
          { title: `Round down to ${qemuSizeString(down)}`, edits: [{ span: b.size!.m.span(), newText: qemuSizeString(down) }] },
        ],
      });
    }
  },
};
