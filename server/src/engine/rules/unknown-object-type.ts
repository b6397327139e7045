import { Rule } from './rule';
import { objectKnown } from '../qemu/catalog';
import { closest } from './unknown-device-type';

const HINTS: Record<string, string> = {
  'acpi-egm-memory':
    "acpi-egm-memory (NVIDIA Grace EGM) exists only in NVIDIA's QEMU fork for the aarch64 virt machine, not in upstream QEMU",
  'memory-backend-shm': 'memory-backend-shm was added in QEMU 9.1; on 7.2 use memory-backend-file with mem-path=/dev/shm/NAME and share=on',
};

export const rule: Rule = {
  code: 'unknown-object-type',
  severity: 'error',
  summary: 'An -object type must be a user-creatable object that the QEMU judged for has.',
  enforcedBy: "Parameter 'qom-type' does not accept value 'acpi-egm-memory'",
  check({ node, qemu, report }) {
    for (const o of node.objects) {
      if (objectKnown(qemu, o.qomType)) continue;
      // A libvirt <acpiEgmMemory> becomes this object (the EGM RFC): egm-unsupported says it on the element.
      if (o.qomType === 'acpi-egm-memory' && node.kind === 'libvirt') continue;
      if (!o.qomType) {
        report({ span: o.m.span(), message: `-object needs a type first (e.g. memory-backend-file,id=…). QEMU: "Parameter 'qom-type' is missing"` });
        continue;
      }
      const near = HINTS[o.qomType] ? undefined : closest(o.qomType, Object.keys(qemu.objects));
      report({
        span: o.typeM.span(),
        message: `QEMU ${qemu.version} has no object type '${o.qomType}'${HINTS[o.qomType] ? `: ${HINTS[o.qomType]}` : near ? ` (did you mean '${near}'?)` : ''}. QEMU: "Parameter 'qom-type' does not accept value '${o.qomType}'"`,
        fixes: near ? [{ title: `Change to ${near}`, edits: [{ span: o.typeM.span(), newText: near }] }] : [],
      });
    }
  },
};
