/**
 * The guest-physical memory map of a node, as QEMU 7.2, SeaBIOS 1.16.2 and
 * Linux build it: the top-level /proc/iomem entries from 1 MiB up, the
 * firmware's E820 map, and every PCI memory BAR the firmware assigns.
 */
import { NodeModel } from '../model/model';
import { MiB } from '../text/sizes';
import { Platform, platformOf } from './platform';
import { E820Entry, firmwareE820, firmwareTypeName, kernelE820, E820_SOFT_RESERVED } from './e820';
import { PciFunction, allocate, bdf, pciFunctions } from './pci';

export const LAYOUT_QEMU_VERSION = '7.2';

export interface IomemEntry {
  start: bigint;
  end: bigint;
  name: string;
  children?: IomemEntry[];
}

export interface BarPlacement {
  device: string;
  bdf: string;
  bar: number;
  start: bigint;
  size: bigint;
  bits: 32 | 64;
  prefetchable: boolean;
}

export interface NodeLayout {
  name: string;
  qemuVersion: string;
  platform: Platform;
  iomem: IomemEntry[];
  e820: { start: bigint; end: bigint; type: string }[];
  bars: BarPlacement[];
  functions: PciFunction[];
  hole64: { start: bigint; end: bigint };
}

export interface LayoutOptions {
  /** Include memfabric's guest agent device, as `memfabric boot` runs the node (default true). */
  agent?: boolean;
}

const MMCONFIG = { start: 0xb0000000n, end: 0xbfffffffn };

export function computeLayout(node: NodeModel, opts: LayoutOptions = {}): NodeLayout {
  const p = platformOf(node);
  const fns = pciFunctions(node, p, { agent: opts.agent ?? true });
  const alloc = allocate(fns, p);

  const fw = firmwareE820(p);
  const kernel = kernelE820(fw, node.memmap);

  // 64-bit window: QEMU widens its default hole to cover what the firmware placed (q35_host_get_pci_hole64_*).
  const high: { start: bigint; end: bigint }[] = [];
  for (const f of fns) {
    for (const b of f.bars) if (b.start !== undefined && b.start >= 1n << 32n && !b.rom) high.push({ start: b.start, end: b.start + b.size });
    for (const w of f.bridge?.windows ?? []) if (w.start !== undefined && w.start >= 1n << 32n && f.bus === 0) high.push({ start: w.start, end: w.start + w.size });
  }
  let h64Start = p.hole64DefaultStart;
  let h64End: bigint;
  if (high.length) {
    h64Start = high.reduce((a, r) => (r.start < a ? r.start : a), high[0].start);
    const highest = high.reduce((a, r) => (r.end > a ? r.end : a), 0n);
    const dflt = alignUp1G(h64Start + p.hole64Size);
    h64End = highest > dflt ? highest : dflt;
  } else h64End = alignUp1G(h64Start + p.hole64Size);

  const top: IomemEntry[] = [];
  // e820 (kernel view), from 1 MiB up.
  let hmem = 0;
  for (const e of kernel) {
    if (e.end < MiB) continue;
    const start = e.start < MiB ? MiB : e.start;
    if (e.type === E820_SOFT_RESERVED) top.push({ start, end: e.end, name: `hmem.${hmem++}`, children: [{ start, end: e.end, name: 'Soft Reserved' }] });
    else top.push({ start, end: e.end, name: firmwareTypeName(e.type) });
  }
  // PCI host bridge windows (_CRS).
  const w32: IomemEntry[] = [];
  if (p.base === 'q35') {
    if (p.pciHoleStart < MMCONFIG.start) w32.push({ start: p.pciHoleStart, end: MMCONFIG.start - 1n, name: 'PCI Bus 0000:00' });
    w32.push({ start: MMCONFIG.end + 1n, end: 0xfebfffffn, name: 'PCI Bus 0000:00' });
  } else {
    w32.push({ start: p.pciHoleStart, end: 0xfebfffffn, name: 'PCI Bus 0000:00' });
  }
  for (const w of w32) top.push(w);
  if (p.base === 'q35') top.push({ start: MMCONFIG.start, end: MMCONFIG.end, name: 'PCI MMCONFIG 0000 [bus 00-ff]' });
  top.push({ start: 0xfec00000n, end: 0xfec003ffn, name: 'IOAPIC 0' });
  top.push({ start: 0xfed00000n, end: 0xfed003ffn, name: 'HPET 0' });
  top.push({ start: 0xfee00000n, end: 0xfee00fffn, name: 'Local APIC' });
  top.push({ start: h64Start, end: h64End - 1n, name: 'PCI Bus 0000:00' });
  for (const w of p.cxl?.windows ?? []) if (w.size > 0n) top.push({ start: w.base, end: w.base + w.size - 1n, name: `CXL Window ${w.index}` });

  const iomem = nest(top);
  const bars: BarPlacement[] = [];
  for (const f of fns) {
    for (const b of f.bars) {
      if (b.rom || b.start === undefined) continue;
      bars.push({ device: f.device, bdf: bdf(f), bar: b.bar, start: b.start, size: b.size, bits: b.is64 ? 64 : 32, prefetchable: b.prefetch });
    }
  }
  void alloc;
  return {
    name: node.name,
    qemuVersion: LAYOUT_QEMU_VERSION,
    platform: p,
    iomem,
    e820: fw.map((e: E820Entry) => ({ start: e.start, end: e.end, type: firmwareTypeName(e.type) })),
    bars,
    functions: fns,
    hole64: { start: h64Start, end: h64End },
  };
}

function alignUp1G(v: bigint): bigint {
  const g = 1n << 30n;
  return ((v + g - 1n) / g) * g;
}

/**
 * Linux's resource tree: an entry that lies inside an earlier, larger one
 * becomes its child (e820 "Reserved" under MMCONFIG, for example).
 */
function nest(entries: IomemEntry[]): IomemEntry[] {
  const sorted = [...entries].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : b.end > a.end ? 1 : b.end < a.end ? -1 : 0));
  const out: IomemEntry[] = [];
  for (const e of sorted) {
    const parent = out.find((o) => o.start <= e.start && e.end <= o.end && !(o.start === e.start && o.end === e.end && o.name === e.name));
    if (parent && !(parent.start === e.start && parent.end === e.end && e.name === 'PCI MMCONFIG 0000 [bus 00-ff]')) {
      (parent.children ??= []).push(e);
    } else if (parent) {
      // MMCONFIG claims the same range as the e820 Reserved entry and becomes its parent.
      out.splice(out.indexOf(parent), 1, { ...e, children: [parent, ...(e.children ?? [])] });
    } else out.push(e);
  }
  return out;
}
