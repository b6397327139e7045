import { Rule } from './rule';
import { NodeModel, QDevice } from '../model/model';
import { Span } from '../text/source';
import { DIMM_DEVICES, hotplugSpace } from './memory-device-needs-maxmem';
import { devProp, deviceLabel } from './util';

export interface SlotFailure {
  device: QDevice;
  span: Span;
  why: string;
  qemu: string;
}

/**
 * pc_dimm_get_free_slot, device by device in command-line order: an explicit
 * slot= must be below slots and free; a DIMM without slot= takes the lowest
 * free one. Only meaningful when the node has slots and a hotplug region.
 */
export function dimmSlotFailures(node: NodeModel): SlotFailure[] {
  const slots = node.memory.slots?.n;
  if (!slots || !(slots > 0) || hotplugSpace(node) === undefined) return [];
  const used = new Set<number>();
  const out: SlotFailure[] = [];
  for (const d of node.devices) {
    if (!DIMM_DEVICES.has(d.driver)) continue;
    const p = devProp(d, 'slot');
    if (p && /^-?\d+$/.test(p.value.text) && Number(p.value.text) !== -1) {
      const s = Number(p.value.text);
      if (s < 0 || s >= slots) {
        out.push({ device: d, span: p.value.span(), why: `slot=${s} is outside the ${slots} slot(s) of -m (0…${slots - 1})`, qemu: `invalid slot number ${s}, valid range is [0-${slots - 1}]` });
      } else if (used.has(s)) {
        out.push({ device: d, span: p.value.span(), why: `slot ${s} is already taken by an earlier DIMM`, qemu: `slot ${s} is busy` });
      } else used.add(s);
      continue;
    }
    let free = 0;
    while (used.has(free)) free++;
    if (free >= slots) {
      out.push({ device: d, span: d.driverM.span(), why: `all ${slots} slot(s) of -m are taken by earlier DIMMs`, qemu: 'no free slots available' });
      continue;
    }
    used.add(free);
  }
  return out;
}

export const rule: Rule = {
  code: 'memory-device-slots-full',
  severity: 'error',
  summary:
    'Each pc-dimm and nvdimm takes one of the -m slots= (an explicit slot= must be below slots and not taken): more DIMMs than slots, or a bad slot=, and QEMU refuses the DIMM.',
  enforcedBy: 'no free slots available / invalid slot number 2, valid range is [0-1] / slot 0 is busy',
  check({ node, report }) {
    const failures = dimmSlotFailures(node);
    if (!failures.length) return;
    const slots = node.memory.slots!;
    const dimms = node.devices.filter((d) => DIMM_DEVICES.has(d.driver)).length;
    const fixes =
      dimms > slots.n && dimms <= 256 ? [{ title: `Set slots=${dimms}`, edits: [{ span: slots.m.span(), newText: String(dimms) }] }] : [];
    for (const f of failures) {
      report({
        span: f.span,
        message: `${deviceLabel(f.device)}: ${f.why} (${dimms} DIMM(s), slots=${slots.n}). QEMU: "${f.qemu}"`,
        related: [{ span: slots.m.span(), message: `slots=${slots.n}` }],
        fixes: f.qemu === 'no free slots available' ? fixes : [],
      });
    }
  },
};
