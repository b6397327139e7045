import { Rule } from './rule';
import { objectHasProp } from '../qemu/catalog';
import { isOn, qemuName } from './util';
import { prop, qemuBool } from '../model/model';

const ON = "property 'rom' = 'on' is not supported with 'readonly' = 'off'";
const OFF = "property 'rom' = 'off' is incompatible with 'readonly' = 'on' and 'share' = 'on'";

/**
 * backends/hostmem-file.c file_backend_memory_alloc(), QEMU 8.2 and later
 * (rom=on|off|auto): rom=on needs readonly=on (a ROM the guest cannot write
 * over a file QEMU may write makes no sense); rom=off with readonly=on needs
 * share=off (the guest's writes go to a private copy of a file opened
 * read-only). Applies whenever the QEMU judged for has rom= (older ones:
 * unknown-property).
 */
export const rule: Rule = {
  code: 'backend-rom-readonly',
  severity: 'error',
  summary:
    "A memory-backend-file's rom= (QEMU 8.2 and later) must agree with readonly=: rom=on needs readonly=on, and rom=off with readonly=on needs share=off.",
  enforcedBy: `${ON} / ${OFF}`,
  check({ node, qemu, report }) {
    for (const b of node.backends.values()) {
      if (b.obj.qomType !== 'memory-backend-file' || !objectHasProp(qemu, b.obj.qomType, 'rom')) continue;
      const rom = prop(b.obj.props, 'rom');
      if (!rom) continue;
      const v = rom.value.text === 'auto' ? undefined : qemuBool(rom.value.text);
      const readonly = isOn(b.readonly);
      if (v === true && !readonly) {
        const at = b.readonly ? b.readonly.value.span() : undefined;
        report({
          span: rom.value.span(),
          message: `Backend '${b.id}' has rom=on but ${b.readonly ? `readonly=${b.readonly.value.text}` : 'no readonly=on (the default is off)'}: a guest-read-only region needs the file opened read-only. Add readonly=on, or drop rom=. QEMU: "${ON}" (${qemuName(qemu)})`,
          related: b.readonly ? [{ span: b.readonly.value.span(), message: 'readonly' }] : [],
          fixes: b.obj.json ? [] : [at
            ? { title: 'Set readonly=on', edits: [{ span: at, newText: 'on' }] }
            : { title: 'Add readonly=on', edits: [{ span: { start: rom.value.span().end, end: rom.value.span().end }, newText: ',readonly=on' }] }],
        });
      } else if (v === false && readonly && isOn(b.share)) {
        report({
          span: rom.value.span(),
          message: `Backend '${b.id}' has rom=off with readonly=on and share=on: the guest could write to memory backed by a file opened read-only and shared. Use share=off (the guest's writes stay in a private copy), or rom=on. QEMU: "${OFF}" (${qemuName(qemu)})`,
          related: [
            { span: b.readonly!.value.span(), message: 'readonly=on' },
            { span: b.share!.value.span(), message: 'share=on' },
          ],
          fixes: b.obj.json ? [] : [{ title: 'Set rom=on', edits: [{ span: rom.value.span(), newText: 'on' }] }],
        });
      }
    }
  },
};
