import { Rule } from './rule';
import { machineKnown } from '../qemu/catalog';
import { closest } from './unknown-device-type';
import { qemuAtLeast } from '../qemu/profile';

export const rule: Rule = {
  code: 'unknown-machine-type',
  severity: 'error',
  summary: 'The machine type must be one that the QEMU judged for has (q35, pc, pc-q35-7.2, ... for qemu-system-x86_64; virt, virt-7.2, ... for qemu-system-aarch64; versioned types come and go with releases).',
  // QEMU 7.2: "unsupported machine type"; 10.0 adds the name (release not pinned: 8.0 assumed).
  enforcedBy: 'unsupported machine type (QEMU 7.2) / unsupported machine type: "NAME" (10.0)',
  check({ node, qemu, report }) {
    const t = node.machine.type;
    if (!t || machineKnown(qemu, t.text) || t.text === 'help') return;
    const near = closest(t.text, Object.keys(qemu.machines));
    report({
      span: t.span(),
      message: `qemu-system-${qemu.arch} ${qemu.version} has no machine type '${t.text}'${near ? ` (did you mean '${near}'?)` : ''}. QEMU: "${qemuAtLeast(qemu, '8.0') ? `unsupported machine type: \"${t.text}\"` : 'unsupported machine type'}" / "Use -machine help to list supported machines"`,
      fixes: near ? [{ title: `Change to ${near}`, edits: [{ span: t.span(), newText: near }] }] : [],
    });
  },
};
