import { Rule } from './rule';

/**
 * Raised by the libvirt reader (readers/libvirt-slots.ts). libvirt 9.0 gives
 * its own devices JSON -device options with fixed PCI addresses; QEMU (7.2 and
 * 10.0 alike) creates the key=value -device options of <qemu:commandline>
 * before every JSON one, so a pass-through PCI device without addr= takes the
 * first free slot of the root bus (pcie.0 slot 1 on q35, pci.0 slot 2 on pc)
 * before libvirt's own device is created there, and QEMU stops on libvirt's.
 */
export const rule: Rule = {
  code: 'libvirt-passthrough-slot',
  severity: 'error',
  summary:
    'A PCI device passed in <qemu:commandline> without addr= takes the first free root-bus slot before libvirt\'s own devices are created (QEMU creates key=value -device options before libvirt\'s JSON ones): when libvirt assigned that slot (q35: video or its first pcie-root-port at slot 1; pc: video, NIC, disk or balloon from slot 2), QEMU refuses to start. Give the device bus= and addr= of a free slot.',
  enforcedBy: 'PCI: slot 1 function 0 not available for pcie-root-port, in use by ivshmem-plain,id=(null)',
};
