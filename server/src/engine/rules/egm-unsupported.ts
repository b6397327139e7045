import { Rule } from './rule';

export const rule: Rule = {
  code: 'egm-unsupported',
  severity: 'warning',
  summary:
    'NVIDIA Grace EGM (acpi-egm-memory) is not in any QEMU or libvirt release: it needs NVIDIA’s QEMU fork (aarch64 virt) and the libvirt RFC; stock libvirt drops <acpiEgmMemory> silently.',
};
