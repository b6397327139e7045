import { Rule } from './rule';

export const rule: Rule = {
  code: 'libvirt-memory',
  severity: 'error',
  summary:
    'A libvirt domain needs a memory size (<memory> or NUMA cells), and on x86 memory hotplug (<maxMemory>) needs at least one NUMA cell.',
  enforcedBy: 'XML error: Memory size must be specified via <memory> or in the <numa> configuration / unsupported configuration: At least one numa node has to be configured when enabling memory hotplug',
};
