import { Rule } from './rule';
import { qemuAtLeast } from '../qemu/profile';
import { REMOVED_IN } from './libvirt-no-acpi-option';

/**
 * libvirt domains (the reader notes the memory devices of a domain without
 * <acpi/>: NodeModel.libvirtNoAcpi). Checked with libvirt 9.0: it accepts the
 * domain (define, domxml-to-native) and passes -no-acpi when <features> has no
 * <acpi/>; QEMU 7.2 then refuses every memory device (nvdimm, pc-dimm) at
 * start, on pc and q35 alike. QEMU 9.0 and later refuse -no-acpi itself first
 * (libvirt-no-acpi-option says so, naming the devices): recorded in
 * test/corpus/libvirt/008-nvdimm-no-acpi for both.
 */
export const rule: Rule = {
  code: 'libvirt-memory-device-acpi',
  severity: 'error',
  summary:
    "A <memory model='nvdimm'> (or 'dimm') needs <features><acpi/></features>: without it libvirt passes -no-acpi and QEMU refuses the memory device at start (QEMU before 9.0; later ones refuse -no-acpi itself: libvirt-no-acpi-option).",
  enforcedBy: 'memory hotplug is not enabled: missing acpi device or acpi disabled',
  check({ node, qemu, report }) {
    const n = node.libvirtNoAcpi;
    if (node.kind !== 'libvirt' || !n || qemuAtLeast(qemu, REMOVED_IN)) return;
    for (const m of n.memoryDevices) {
      report({
        span: m.span,
        message: `A <memory model='${m.model}'> needs ACPI, and this domain has no <features><acpi/></features>: libvirt 9.0 then starts QEMU with -no-acpi and QEMU ${qemu.version} refuses the device: "memory hotplug is not enabled: missing acpi device or acpi disabled". Add <acpi/> to <features>.`,
        related: n.related,
        fixes: n.fixes,
      });
    }
  },
};
