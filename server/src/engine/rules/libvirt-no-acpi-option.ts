import { Rule } from './rule';
import { qemuAtLeast } from '../qemu/profile';

/**
 * Raised on libvirt domains. libvirt 9.0 (src/qemu/qemu_command.c,
 * qemuBuildCommandLine) adds -no-acpi for an x86 or aarch64 domain whose
 * <features> has no <acpi/>: its QEMU_CAPS_NO_ACPI is set for those arches
 * whatever the binary (qemu_capabilities.c virQEMUCapsInitQMPBasicArch).
 * QEMU deprecated -no-acpi in 8.0 and removed it in 9.0 ("Use -machine
 * acpi=off instead", docs/about/removed-features.rst); QEMU 10.0.2 exits with
 * "qemu-system-x86_64: -no-acpi: invalid option", QEMU 7.2 starts.
 * Before 9.0, QEMU gets further and refuses the memory devices (libvirt-memory-device-acpi).
 */
export const REMOVED_IN = '9.0';

export const rule: Rule = {
  code: 'libvirt-no-acpi-option',
  severity: 'error',
  summary:
    'A libvirt domain without <features><acpi/></features> is started by libvirt 9.0 with -no-acpi, an option QEMU removed in 9.0: QEMU 9.0 and later refuse to start.',
  enforcedBy: '-no-acpi: invalid option',
  check({ node, qemu, report }) {
    const n = node.libvirtNoAcpi;
    if (node.kind !== 'libvirt' || !n || !qemuAtLeast(qemu, REMOVED_IN)) return;
    const mem = n.memoryDevices.length ? ` (its ${n.memoryDevices.map((m) => `<memory model='${m.model}'>`).join(', ')} would need ACPI too)` : '';
    report({
      span: n.span,
      message: `This domain has no <features><acpi/></features>, so libvirt 9.0 starts QEMU with -no-acpi; QEMU removed that option in ${REMOVED_IN} (use -machine acpi=off instead), and QEMU ${qemu.version} refuses to start: "qemu-system-${node.arch}: -no-acpi: invalid option"${mem}. Add <acpi/> to <features> (libvirt then passes nothing).`,
      related: n.related,
      fixes: n.fixes,
    });
  },
};
