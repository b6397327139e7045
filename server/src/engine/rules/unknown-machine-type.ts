import { Rule } from './rule';
import { catalog } from '../qemu/catalog';
import { closest } from './unknown-device-type';

export const rule: Rule = {
  code: 'unknown-machine-type',
  severity: 'error',
  summary: 'The machine type must be one qemu-system-x86_64 7.2 has (q35, pc, pc-q35-7.2, ...).',
  enforcedBy: "unsupported machine type",
  check({ node, report }) {
    const t = node.machine.type;
    if (!t || t.text in catalog.machines || t.text === 'help') return;
    const near = closest(t.text, Object.keys(catalog.machines));
    report({
      span: t.span(),
      message: `qemu-system-x86_64 7.2 has no machine type '${t.text}'${near ? ` (did you mean '${near}'?)` : ''}. QEMU: "unsupported machine type" / "Use -machine help to list supported machines"`,
      fixes: near ? [{ title: `Change to ${near}`, edits: [{ span: t.span(), newText: near }] }] : [],
    });
  },
};
