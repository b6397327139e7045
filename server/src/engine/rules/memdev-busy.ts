import { Rule } from './rule';
import { MStr } from '../text/source';
import { devInt, devProp, qemuName } from './util';
import { prop } from '../model/model';
import { qemuAtLeast } from '../qemu/profile';
import { deviceHasProp } from '../qemu/catalog';
import type { QemuProfile } from '../qemu/profile';
import type { QDevice } from '../model/model';

const BUSY = (id: string) => `can't use already busy memdev: ${id}`;
const MULTIPLE = (id: string) => `memory backend ${id} can't be used multiple times.`;

/** How a use of a backend behaves in QEMU: does it refuse a mapped backend (and with what words), does it mark the backend mapped. */
interface Use { key: string; checks?: (id: string) => string; marks: boolean }

/**
 * The backend links of a device, in the order its realize function maps them.
 * hw/mem/pc-dimm.c, hw/misc/ivshmem.c: "can't use already busy memdev";
 * hw/virtio/virtio-mem.c: "'memdev' property specifies a busy memdev";
 * hw/mem/cxl_type3.c cxl_setup_memory(): QEMU 7.2 marks memdev= mapped
 * without checking; from 9.1 volatile-memdev, memdev/persistent-memdev and
 * (with num-dc-regions > 0) volatile-dc-memdev are checked, in that order,
 * "memory backend %s can't be used multiple times.". The lsa= backend is never
 * checked nor marked, in any version.
 */
function usesOf(d: QDevice, qemu: QemuProfile): Use[] {
  switch (d.driver) {
    case 'ivshmem-plain':
    case 'pc-dimm':
    case 'nvdimm':
      return [{ key: 'memdev', checks: BUSY, marks: true }];
    case 'virtio-mem-pci':
      return [{ key: 'memdev', checks: (id) => `'memdev' property specifies a busy memdev: ${id}`, marks: true }];
    case 'cxl-type3': {
      const checks = qemuAtLeast(qemu, '9.1') ? MULTIPLE : undefined;
      const uses: Use[] = [
        { key: 'volatile-memdev', checks, marks: true },
        { key: 'memdev', checks, marks: true },
        { key: 'persistent-memdev', checks, marks: true },
      ];
      if (deviceHasProp(qemu, 'cxl-type3', 'num-dc-regions') && (devInt(d, 'num-dc-regions') ?? 0) > 0) {
        uses.push({ key: 'volatile-dc-memdev', checks, marks: true });
      }
      uses.push({ key: 'lsa', marks: false });
      return uses;
    }
    default:
      return [];
  }
}

export const rule: Rule = {
  code: 'memdev-busy',
  severity: 'error',
  summary:
    'A memory backend can be mapped by one user only (a NUMA node, the machine RAM, an ivshmem, a DIMM, a virtio-mem, a CXL Type 3 backend or LSA). QEMU refuses a second user that checks; cxl-type3 checks only from 9.1 (QEMU 7.2 accepts it and both alias the same memory), and an lsa= backend is never checked.',
  enforcedBy: "can't use already busy memdev: fam / memory backend fam can't be used multiple times. (cxl-type3, 9.1 and later)",
  check({ node, qemu, report }) {
    // Order of realisation: machine RAM and NUMA first (machine init), then -device in order.
    const claimed = new Map<string, { by: string; m: MStr; marks: boolean }>();
    const claim = (id: MStr, by: string, use: Use) => {
      if (!node.backends.has(id.text)) return;
      const prev = claimed.get(id.text);
      if (prev) {
        const refuses = use.checks !== undefined && prev.marks;
        const why = refuses
          ? `QEMU: "${use.checks!(id.text)}" (${qemuName(qemu)})`
          : use.checks === undefined
            ? use.key === 'lsa'
              ? `QEMU never checks an lsa= backend and starts, but the label storage area then overwrites the other user's memory.`
              : `${qemuName(qemu)}'s cxl-type3 does not check this (from 9.1 it refuses: "${MULTIPLE(id.text)}") and starts, but both then map the same host memory.`
            : `QEMU does not see it (an lsa= backend is not marked as used) and starts, but the label storage area and this user then share the same host memory.`;
        report({
          span: id.span(),
          message: `Memory backend '${id.text}' is already used by ${prev.by}. ${why}`,
          related: [{ span: prev.m.span(), message: `first use, by ${prev.by}` }],
        });
        if (!prev.marks && use.marks) claimed.set(id.text, { by, m: id, marks: true });
        return;
      }
      claimed.set(id.text, { by, m: id, marks: use.marks });
    };
    const ram: Use = { key: 'memdev', checks: MULTIPLE, marks: true };
    const mb = prop(node.machine.props, 'memory-backend');
    if (mb) claim(mb.value, 'the machine RAM (memory-backend)', ram);
    for (const n of node.numa) if (n.memdev) claim(n.memdev, `NUMA node ${n.nodeid?.m.text ?? '?'}`, ram);
    for (const d of node.devices) {
      for (const use of usesOf(d, qemu)) {
        const p = devProp(d, use.key);
        if (p) claim(p.value, `${d.driver}${d.id ? ` '${d.id.text}'` : ''} (${use.key})`, use);
      }
    }
  },
};
