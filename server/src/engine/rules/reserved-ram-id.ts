import { Rule } from './rule';
import { qemuAtLeast } from '../qemu/profile';
import { machineBase, prop, X86_ARCHES } from '../model/model';
import { qemuName, sizeOf, ramSize } from './util';
import { Fix } from '../diagnostics';

const RAM_ID = 'pc.ram'; // default_ram_id of pc and q35

/**
 * hw/core/machine.c machine_run_board_init(): when QEMU creates the default
 * RAM backend itself (no -machine memory-backend=, no -numa memdev=), its id
 * (pc.ram for pc and q35) must be free: any -object with that id is refused.
 * In QEMU 7.2 from the 7.2.3 stable release; 10.0 words it differently and adds
 * a hint (the release of the new words is not pinned: 8.0 assumed).
 */
export const rule: Rule = {
  code: 'reserved-ram-id',
  severity: 'error',
  arches: X86_ARCHES,
  summary:
    "The id pc.ram belongs to the RAM backend QEMU creates for pc and q35: no -object may use it unless -machine memory-backend= names it (or -numa nodes give the RAM with memdev=).",
  enforcedBy: "object name 'pc.ram' is reserved for the default RAM backend, it can't be used for any other purposes. Change the object's 'id' to something else (QEMU 7.2) / object's id 'pc.ram' is reserved for the default RAM backend, it can't be used for any other purposes (10.0)",
  check({ node, qemu, report }) {
    if (machineBase(node.machine.type?.text) === 'other') return;
    if (prop(node.machine.props, 'memory-backend')) return;
    if (node.numa.some((n) => n.memdev)) return;
    for (const o of node.objects) {
      if (o.id?.text !== RAM_ID) continue;
      const text = qemuAtLeast(qemu, '8.0')
        ? `object's id '${RAM_ID}' is reserved for the default RAM backend, it can't be used for any other purposes`
        : `object name '${RAM_ID}' is reserved for the default RAM backend, it can't be used for any other purposes. Change the object's 'id' to something else`;
      const fixes: Fix[] = [];
      const b = node.backends.get(RAM_ID);
      const t = node.machine.type;
      if (b && b.obj === o && t && sizeOf(b.size) === ramSize(node)) {
        fixes.push({ title: `Use it as the RAM: add memory-backend=${RAM_ID} to -machine`, edits: [{ span: { start: t.span().end, end: t.span().end }, newText: `,memory-backend=${RAM_ID}` }] });
      }
      report({
        span: o.id.span(),
        message: `'${RAM_ID}' is the id of the RAM backend QEMU creates for this ${machineBase(node.machine.type?.text)} machine: give this ${o.qomType} another id, or make it the machine's RAM with -machine memory-backend=${RAM_ID} (its size must then equal -m). QEMU: "${text}" (${qemuName(qemu)})`,
        fixes,
      });
    }
  },
};
