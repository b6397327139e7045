import { Rule } from './rule';

/**
 * Raised by the libvirt reader. Checked with libvirt 9.0 and QEMU 7.2: libvirt
 * accepts the domain (define, domxml-to-native) and passes -no-acpi when
 * <features> has no <acpi/>; QEMU then refuses every memory device (nvdimm,
 * pc-dimm) at start, on pc and q35 alike (and QEMU 10.0 with acpi=off too).
 */
export const rule: Rule = {
  code: 'libvirt-memory-device-acpi',
  severity: 'error',
  summary:
    "A <memory model='nvdimm'> (or 'dimm') needs <features><acpi/></features>: without it libvirt passes -no-acpi and QEMU refuses the memory device at start.",
  enforcedBy: 'memory hotplug is not enabled: missing acpi device or acpi disabled',
};
