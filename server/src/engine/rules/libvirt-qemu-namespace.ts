import { Rule } from './rule';

export const rule: Rule = {
  code: 'libvirt-qemu-namespace',
  severity: 'error',
  summary:
    "<qemu:commandline> works only as a direct child of <domain> with its prefix bound to http://libvirt.org/schemas/domain/qemu/1.0 (xmlns:qemu on <domain>); otherwise `virsh define` drops it without a word.",
  enforcedBy: 'virt-xml-validate: "Namespace prefix qemu on commandline is not defined"; virsh define: silent drop',
};
