import { Rule } from './rule';

/**
 * Raised by the libvirt reader. Checked with libvirt 9.0 and QEMU 7.2: libvirt
 * accepts the domain (define, domxml-to-native) and passes -no-acpi when
 * <features> has no <acpi/>; on pc QEMU then has no ACPI device and refuses
 * every memory device at start. On q35 QEMU 7.2 starts (its -no-acpi leaves
 * the ICH9 ACPI device in place), so q35 gets no finding.
 */
export const rule: Rule = {
  code: 'libvirt-memory-device-acpi',
  severity: 'error',
  summary:
    "A <memory model='nvdimm'> (or 'dimm') on a pc domain needs <features><acpi/></features>: without it libvirt passes -no-acpi and QEMU refuses the memory device at start.",
  enforcedBy: 'memory hotplug is not enabled: missing acpi device or acpi disabled',
};
