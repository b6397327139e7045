import { Rule } from './rule';
import { attr, child, XmlAttr, XmlElement } from '../syntax/xml';
import { memoryDevices, Report } from '../readers/libvirt-domain';
import { KiB, MiB } from '../text/sizes';

/**
 * Raised by the libvirt reader. A dimm or nvdimm with <address type='dimm'
 * slot=… base=…/>:
 * - libvirt 9.0 refuses at define a slot beyond <maxMemory slots>, a slot or a
 *   base used twice (qemuDomainDefValidateMemoryHotplugDevice: "memory device
 *   slot 'N' exceeds slots count 'M'", "memory device slot 'N' is already
 *   being used by another memory device", "memory device base '0x…' is already
 *   being used by another memory device");
 * - ranges that overlap without the same base pass libvirt 9.0 (define and
 *   domxml-to-native; its check "memory device address … overlaps with other
 *   memory device" came in a later release) and QEMU 7.2 refuses the second
 *   device at start: "address range conflicts with memory device id='dimm0'".
 *   The range is base + the size libvirt passes (rounded up to 2 MiB on x86).
 */
export const rule: Rule = {
  code: 'libvirt-memory-address',
  severity: 'error',
  summary:
    "Memory devices' <address type='dimm' slot base>: slots below <maxMemory slots>, each slot and base once (libvirt 9.0 at define), and no two [base, base+size) ranges overlapping (libvirt 9.0 lets it pass; QEMU refuses at start).",
  enforcedBy: "memory device slot '4' exceeds slots count '4' / memory device base '0x100000000' is already being used by another memory device / address range conflicts with memory device id='dimm0'",
};

const parseNum = (s: string): bigint | undefined => (/^0x[0-9a-f]+$/i.test(s) || /^[0-9]+$/.test(s) ? BigInt(s) : undefined);
const hex = (v: bigint) => `0x${v.toString(16)}`;

export function checkDomain(dom: XmlElement, report: Report): void {
  const maxEl = child(dom, 'maxMemory');
  const slotsA = maxEl && attr(maxEl, 'slots');
  const nslots = slotsA && /^[0-9]+$/.test(slotsA.value.text) ? Number(slotsA.value.text) : undefined;
  const seen: { alias: string; slot?: { n: number; a: XmlAttr }; base?: { v: bigint; end: bigint; a: XmlAttr } }[] = [];
  for (const d of memoryDevices(dom)) {
    const model = d.model?.value.text;
    if (model !== 'dimm' && model !== 'nvdimm') continue;
    const addr = child(d.el, 'address');
    if (!addr || attr(addr, 'type')?.value.text !== 'dimm') continue;
    const sa = attr(addr, 'slot');
    const ba = attr(addr, 'base');
    const slotN = sa ? parseNum(sa.value.text) : undefined;
    const baseV = ba ? parseNum(ba.value.text) : undefined;
    const me: (typeof seen)[number] = { alias: d.alias };
    if (sa && slotN !== undefined) {
      const n = Number(slotN);
      if (nslots !== undefined && nslots > 0 && n >= nslots) {
        report({
          span: sa.valueSpan,
          message: `slot ${n} with <maxMemory slots='${nslots}'>: the slots are 0 … ${nslots - 1}. libvirt: "unsupported configuration: memory device slot '${n}' exceeds slots count '${nslots}'"`,
          related: [{ span: slotsA!.valueSpan, message: `slots='${nslots}'` }],
        });
        return;
      }
      const other = seen.find((o) => o.slot?.n === n);
      if (other) {
        report({
          span: sa.valueSpan,
          message: `slot ${n} is also ${other.alias}'s: each memory device takes a slot of its own. libvirt: "unsupported configuration: memory device slot '${n}' is already being used by another memory device"`,
          related: [{ span: other.slot!.a.valueSpan, message: `${other.alias}: slot ${n}` }],
        });
        return;
      }
      me.slot = { n, a: sa };
    }
    if (ba && baseV !== undefined && baseV !== 0n) {
      const other = seen.find((o) => o.base?.v === baseV);
      if (other) {
        report({
          span: ba.valueSpan,
          message: `base ${hex(baseV)} is also ${other.alias}'s. libvirt: "unsupported configuration: memory device base '${hex(baseV)}' is already being used by another memory device"`,
          related: [{ span: other.base!.a.valueSpan, message: `${other.alias}: base ${hex(baseV)}` }],
        });
        return;
      }
      // libvirt passes the size rounded up to 2 MiB (x86); unknown size: an empty range.
      const kib = d.size?.kib ?? 0n;
      const bytes = ((kib * KiB + 2n * MiB - 1n) / (2n * MiB)) * 2n * MiB;
      me.base = { v: baseV, end: baseV + bytes, a: ba };
      const hit = seen.find((o) => o.base && o.base.v < me.base!.end && me.base!.v < o.base.end);
      if (hit) {
        report({
          span: ba.valueSpan,
          message: `${d.alias} at [${hex(baseV)}, ${hex(me.base.end)}) overlaps ${hit.alias} at [${hex(hit.base!.v)}, ${hex(hit.base!.end)}). libvirt 9.0 lets it pass; QEMU 7.2 refuses to start: "address range conflicts with memory device id='${hit.alias}'". Move it to base='${hex(hit.base!.end)}' or above.`,
          related: [{ span: hit.base!.a.valueSpan, message: `${hit.alias}: [${hex(hit.base!.v)}, ${hex(hit.base!.end)})` }],
          fixes: [{ title: `Use base='${hex(hit.base!.end)}'`, edits: [{ span: ba.valueSpan, newText: hex(hit.base!.end) }] }],
        });
        return;
      }
    }
    seen.push(me);
  }
}
