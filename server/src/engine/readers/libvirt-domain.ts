/**
 * Small views of a libvirt <domain> element shared by the libvirt rules that
 * check the domain as libvirt 9.0 validates it (rules/libvirt-numa-*.ts,
 * libvirt-hugepages.ts, libvirt-memory-*.ts): the guest NUMA cells, the
 * memory devices with their sizes, and libvirt's bitmap syntax for nodesets.
 */
import { Finding } from '../rules/rule';
import { attr, child, childElements, textOf, XmlAttr, XmlElement } from '../syntax/xml';
import { MStr, Span } from '../text/source';
import { KiB, parseLibvirtScaled } from '../text/sizes';

/** Where a libvirt check reports (the reader adds the rule). */
export type Report = (f: Finding) => void;

/** The <cell> elements of <cpu><numa>, in document order (libvirt's cell index is the id, see libvirt-numa-cell). */
export function numaCells(dom: XmlElement): XmlElement[] {
  const cpu = child(dom, 'cpu');
  const numa = cpu && child(cpu, 'numa');
  return numa ? childElements(numa, 'cell') : [];
}

/** A size element (<size>, <block>, <requested>, <label><size>…) in KiB, as libvirt keeps it; undefined when absent or malformed. */
export function sizeKiB(el: XmlElement | undefined): { kib: bigint; m: MStr; el: XmlElement } | undefined {
  if (!el) return undefined;
  const v = textOf(el);
  const r = parseLibvirtScaled(v.text, attr(el, 'unit')?.value.text, KiB);
  if (!r.ok) return undefined;
  // libvirt rounds up to whole KiB (virDomainParseMemory → VIR_DIV_UP).
  return { kib: (r.bytes + KiB - 1n) / KiB, m: v, el };
}

export interface MemoryDevice {
  el: XmlElement;
  /** Position among the domain's <memory> devices. */
  index: number;
  model: XmlAttr | undefined;
  target: XmlElement | undefined;
  size?: { kib: bigint; m: MStr; el: XmlElement };
  /** <target><node>: its number and the range of its text. */
  node?: { n: number; m: MStr };
  /** libvirt's alias for the device ("dimm0" by slot, "virtiomem1" by count). */
  alias: string;
}

export function memoryDevices(dom: XmlElement): MemoryDevice[] {
  const devices = child(dom, 'devices');
  if (!devices) return [];
  const els = childElements(devices, 'memory');
  // libvirt's aliases (qemuAssignDeviceMemoryAlias): dimm and nvdimm are named by their memory slot, the explicit
  // <address type='dimm' slot=…> or else the first free one in document order; virtio-mem and virtio-pmem by a
  // counter per model.
  const slotOf = (el: XmlElement) => {
    const a = child(el, 'address');
    const s = a && attr(a, 'type')?.value.text === 'dimm' ? attr(a, 'slot')?.value.text : undefined;
    return s !== undefined && /^[0-9]+$/.test(s) ? Number(s) : undefined;
  };
  const usedSlots = new Set(els.map(slotOf).filter((x): x is number => x !== undefined));
  const counters = new Map<string, number>();
  return els.map((el, index) => {
    const model = attr(el, 'model');
    const target = child(el, 'target');
    const nodeEl = target && child(target, 'node');
    const nm = nodeEl && textOf(nodeEl);
    const given = child(el, 'alias') && attr(child(el, 'alias')!, 'name')?.value.text;
    const prefix = (model?.value.text ?? 'dimm').replace('-', '');
    let n: number;
    if (prefix === 'dimm' || prefix === 'nvdimm') {
      const s = slotOf(el);
      if (s !== undefined) n = s;
      else {
        for (n = 0; usedSlots.has(n); n++);
        usedSlots.add(n);
      }
    } else {
      n = counters.get(prefix) ?? 0;
      counters.set(prefix, n + 1);
    }
    return {
      el,
      index,
      model,
      target,
      size: target && sizeKiB(child(target, 'size')),
      node: nm && /^[0-9]+$/.test(nm.text) ? { n: Number(nm.text), m: nm } : undefined,
      alias: given ?? `${prefix}${n}`,
    };
  });
}

/**
 * libvirt's bitmap syntax (virBitmapParse): comma-separated numbers and ranges,
 * '^N' removes N. The set's members, or undefined when it does not parse.
 */
export function parseNodeset(s: string): Set<number> | undefined {
  const out = new Set<number>();
  const parts = s.split(',').map((p) => p.trim());
  if (!parts.length || parts.some((p) => p === '')) return undefined;
  for (const p of parts) {
    let m: RegExpExecArray | null;
    if ((m = /^\^([0-9]+)$/.exec(p))) out.delete(Number(m[1]));
    else if ((m = /^([0-9]+)$/.exec(p))) out.add(Number(m[1]));
    else if ((m = /^([0-9]+)-([0-9]+)$/.exec(p)) && Number(m[1]) <= Number(m[2])) {
      for (let i = Number(m[1]); i <= Number(m[2]) && i < 4096; i++) out.add(i);
    } else return undefined;
  }
  return out;
}

/** The range of the number `n` in a nodeset attribute's value (its first mention), or the whole value. */
export function nodeInNodeset(a: XmlAttr, n: number): Span {
  const text = a.value.text;
  const re = /[0-9]+(-[0-9]+)?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    const [lo, hi] = m[0].split('-').map(Number);
    if (n >= lo && n <= (hi ?? lo)) return a.value.span(m.index, m.index + m[0].length);
  }
  return a.valueSpan;
}
