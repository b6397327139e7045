import { Rule } from './rule';

/**
 * Raised from libvirt's answer (engine/libvirt-answer.ts): a running libvirtd,
 * asked for the command line of the domain (`virsh domxml-to-native
 * qemu-argv`, which parses, validates and prepares the domain as a start
 * would, without starting anything), refused it. The message is libvirt's.
 */
export const rule: Rule = {
  code: 'libvirt-refuses',
  severity: 'error',
  summary:
    "A running libvirtd (`check --libvirt`, or the editor when libvirt is reachable), asked for the QEMU command line of the domain, refuses it; no finding of the offline model quotes its reason. The message is libvirt's own, placed at the element it names.",
  enforcedBy: 'libvirt itself (virsh domxml-to-native qemu-argv)',
};
