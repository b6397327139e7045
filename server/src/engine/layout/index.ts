/**
 * The guest-physical memory map of a node, as QEMU, SeaBIOS and Linux build
 * it: the top-level /proc/iomem entries from 1 MiB up, the firmware's E820
 * map, and every PCI memory BAR the firmware assigns. Modelled for QEMU 7.2 +
 * SeaBIOS 1.16.2 (the default) and QEMU 10.0 + SeaBIOS 1.16.3, chosen per
 * call (LayoutOptions.qemu; see versions.ts).
 */
import { NodeModel } from '../model/model';
import { Platform } from './platform';
import { MiB } from '../text/sizes';
import { platformOf } from './platform';
import { guestKernelOf } from '../model/guest-kernel';
import { E820Entry, HighTables, firmwareE820, firmwareTypeName, kernelE820, seabiosHighTables, E820_SOFT_RESERVED } from './e820';
import { PciFunction, allocate, bdf, pciFunctions } from './pci';
import { DEFAULT_LAYOUT_QEMU, LayoutQemu, layoutTarget } from './versions';

export { LayoutQemu, DEFAULT_LAYOUT_QEMU } from './versions';

/** The QEMU release line the default model is for (what `versionWarning` compares with). */

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
  /** The QEMU version the layout was predicted for (LayoutOptions.qemu.version, default 7.2.22). */
  qemuVersion: string;
  /** The SeaBIOS version it was predicted for. */
  firmware: string;
  platform: Platform;
  iomem: IomemEntry[];
  e820: { start: bigint; end: bigint; type: string }[];
  bars: BarPlacement[];
  functions: PciFunction[];
  hole64: { start: bigint; end: bigint };
  /** SeaBIOS cannot fit the 32-bit BARs (it panics). */
  exhausted32?: { need: bigint; start: bigint };
  /** The firmware's 64-bit PCI window ("PCI: 64:"), when it opened one (it may be empty). */
  firmware64?: { start: bigint; end: bigint };
  /** What SeaBIOS keeps at the top of low RAM, and devices whose share of it is not modelled. */
  highTables: HighTables;
}

export interface LayoutOptions {
  /**
   * The node as `memfabric boot` runs it (default true): with memfabric's
   * guest agent device, and the topology's <guest disk> as a virtio disk.
   */
  agent?: boolean;
  /** The QEMU (and SeaBIOS) to predict for; default QEMU 7.2.22 with SeaBIOS 1.16.2. */
  qemu?: LayoutQemu;
  /**
   * The guest's Linux (`uname -r`, or "6.1" / "6.12"), for the names and
   * entries of its /proc/iomem; default 6.1. Measured: 6.1 calls the q35 ECAM
   * range "PCI MMCONFIG 0000 [bus 00-ff]" and lists "Local APIC"; 6.12 calls
   * it "PCI ECAM 0000 [bus 00-ff]" and lists no Local APIC (under QEMU 7.2 and
   * 10.0 alike). Kernels between are predicted as 6.1.
   */
  linux?: string;
}

/** Whether a kernel release ("6.12.95+deb12-amd64", "6.12") is at least major.minor. */
export function linuxAtLeast(release: string | undefined, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release ?? '');
  return !!m && (Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor));
}

/** What the guest's kernel calls the q35 ECAM (MMCONFIG) range in /proc/iomem. */
export function ecamName(linux: string | undefined): string {
  return linuxAtLeast(linux, 6, 12) ? 'PCI ECAM 0000 [bus 00-ff]' : 'PCI MMCONFIG 0000 [bus 00-ff]';
}

const MMCONFIG = { start: 0xb0000000n, end: 0xbfffffffn };

export function computeLayout(node: NodeModel, opts: LayoutOptions = {}): NodeLayout {
  const target = layoutTarget(opts.qemu ?? DEFAULT_LAYOUT_QEMU);
  const p = platformOf(node, target);
  const asBooted = opts.agent ?? true;
  // The guest's kernel: told (verify reads it from the guest), else the built-in guest the node boots, else 6.1.
  opts = { ...opts, linux: opts.linux ?? guestKernelOf(node, (opts.qemu ?? DEFAULT_LAYOUT_QEMU).version) };
  const fns = pciFunctions(node, p, { agent: asBooted, target });
  const alloc = allocate(fns, p, target);

  const highTables = seabiosHighTables(node, p, { bootDisk: asBooted && !!node.bootDisk });
  const fw = firmwareE820(p, target, highTables);
  const kernel = kernelE820(fw, node.memmap);

  // 64-bit window: QEMU widens its default hole to cover what the firmware placed (q35_host_get_pci_hole64_*).
  // It looks at the main root bus only (pci_bus_get_w64_range): the BARs and bridge windows of the
  // functions on bus 0, not what sits behind an expander bridge (its own root bus). A CXL host
  // bridge's component registers placed high by SeaBIOS 1.16.3 do not move the hole's start.
  const high: { start: bigint; end: bigint }[] = [];
  for (const f of fns) {
    if (f.bus !== 0) continue;
    for (const b of f.bars) if (b.start !== undefined && b.start >= 1n << 32n && !b.rom) high.push({ start: b.start, end: b.start + b.size });
    for (const w of f.bridge?.windows ?? []) if (w.start !== undefined && w.start >= 1n << 32n) high.push({ start: w.start, end: w.start + w.size });
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
  // PCI host bridge windows (_CRS, hw/i386/acpi-build.c build_dsdt). Each expander
  // bridge claims the ranges of what sits on its root bus; the main bus gets the
  // free ranges of the 32-bit hole around them (crs_replace_with_free_ranges).
  const pxbRanges = expanderRanges(fns, p);
  const below4g = (r: Range) => r.end < 1n << 32n;
  // Linux cuts a host bridge window to what the CPU can address (iomem_resource ends at
  // 2^phys-bits - 1) and ignores it when nothing is left (acpi_pci_root_validate_resources).
  const cpuEnd = (1n << BigInt(p.physBits)) - 1n;
  const clip = (r: Range): Range | undefined => (r.end <= cpuEnd ? r : cpuEnd <= r.start ? undefined : { ...r, end: cpuEnd });
  const used = [...pxbRanges.flatMap((x) => x.ranges.filter(below4g)), ...pxbRanges.flatMap((x) => x.registers)];
  if (p.base === 'q35') used.push(MMCONFIG);
  // They are DWord descriptors: a limit past 4 GiB is cut to 32 bits, and Linux drops a window that ends before it starts.
  const w32 = freeRanges(used, p.pciHoleStart, 0xfebfffffn)
    .map((r) => ({ start: r.start, end: r.end & 0xffffffffn, name: 'PCI Bus 0000:00' }))
    .filter((r) => r.end >= r.start);
  for (const w of w32) top.push(w);
  for (const x of pxbRanges) {
    for (const r of x.ranges) {
      const c = below4g(r) ? r : clip(r);
      if (c) top.push({ ...c, name: `PCI Bus 0000:${x.bus.toString(16).padStart(2, '0')}` });
    }
  }
  if (p.base === 'q35') top.push({ start: MMCONFIG.start, end: MMCONFIG.end, name: ecamName(opts.linux) });
  top.push({ start: 0xfec00000n, end: 0xfec003ffn, name: 'IOAPIC 0' });
  top.push({ start: 0xfed00000n, end: 0xfed003ffn, name: 'HPET 0' });
  if (!linuxAtLeast(opts.linux, 6, 12)) top.push({ start: 0xfee00000n, end: 0xfee00fffn, name: 'Local APIC' });
  // The 64-bit window is carved the same way (QWord descriptors: no truncation).
  // Linux cuts it to the CPU's physical address bits (SeaBIOS 1.16.3 puts it at their top, and
  // QEMU's hole ends 1 GiB-aligned past start + pci-hole64-size, beyond them).
  const used64 = pxbRanges.flatMap((x) => x.ranges.filter((r) => !below4g(r)));
  const w64 = freeRanges(used64, h64Start, h64End - 1n).map(clip).filter((r): r is Range => !!r);
  for (const r of w64) top.push({ ...r, name: 'PCI Bus 0000:00' });
  reassign(fns, [...w32, ...w64]);
  for (const w of p.cxl?.windows ?? []) if (w.size > 0n) top.push({ start: w.base, end: w.base + w.size - 1n, name: `CXL Window ${w.index}` });

  const iomem = nest(top);
  const bars: BarPlacement[] = [];
  for (const f of fns) {
    for (const b of f.bars) {
      if (b.rom || b.start === undefined) continue;
      bars.push({ device: f.device, bdf: bdf(f), bar: b.bar, start: b.start, size: b.size, bits: b.is64 ? 64 : 32, prefetchable: b.prefetch });
    }
  }
  return {
    name: node.name,
    qemuVersion: target.qemu,
    firmware: target.firmware,
    platform: p,
    iomem,
    e820: fw.map((e: E820Entry) => ({ start: e.start, end: e.end, type: firmwareTypeName(e.type) })),
    bars,
    functions: fns,
    hole64: { start: h64Start, end: h64End },
    exhausted32: alloc.exhausted32,
    firmware64: alloc.mem64,
    highTables,
  };
}

interface Range {
  start: bigint;
  end: bigint;
}

/**
 * What each expander bridge (pxb/pxb-cxl) claims: the BARs and bridge windows
 * of the functions on its root bus, merged where they touch, and for CXL host
 * bridges their component-register block (which only carves the main bus).
 */
function expanderRanges(fns: PciFunction[], p: Platform): { bus: number; ranges: Range[]; registers: Range[] }[] {
  const out: { bus: number; ranges: Range[]; registers: Range[] }[] = [];
  for (const pxb of fns.filter((f) => f.rootBus !== undefined)) {
    const bus = pxb.rootBus!;
    const rs: Range[] = [];
    for (const f of fns.filter((x) => x.bus === bus)) {
      for (const b of f.bars) if (b.start !== undefined && !b.rom) rs.push({ start: b.start, end: b.start + b.size - 1n });
      for (const w of f.bridge?.windows ?? []) if (w.start !== undefined) rs.push({ start: w.start, end: w.start + w.size - 1n });
    }
    rs.sort((a, b) => (a.start < b.start ? -1 : 1));
    const merged: Range[] = [];
    for (const r of rs) {
      const last = merged[merged.length - 1];
      if (last && r.start <= last.end + 1n) last.end = r.end > last.end ? r.end : last.end;
      else merged.push({ ...r });
    }
    const hb = p.cxl?.hostBridges.find((h) => h.busNr === bus);
    out.push({ bus, ranges: merged, registers: hb ? [{ start: hb.base, end: hb.base + 0xffffn }] : [] });
  }
  return out;
}

/** QEMU's crs_replace_with_free_ranges, quirks included: a gap before a used range past `end` is kept whole. */
function freeRanges(used: Range[], start: bigint, end: bigint): Range[] {
  const sorted = [...used].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Range[] = [];
  let base = start;
  for (const u of sorted) {
    if (base < u.start) out.push({ start: base, end: u.start - 1n });
    base = u.end + 1n;
  }
  if (base < end) out.push({ start: base, end });
  return out;
}

/**
 * Linux keeps the firmware's BAR addresses only inside its host bridge's
 * windows; a root-bus BAR left outside them is given a new address, lowest
 * free first, larger BARs first (pci_assign_unassigned_root_bus_resources).
 */
function reassign(fns: PciFunction[], windows: Range[]) {
  const inside = (s: bigint, e: bigint) => windows.some((w) => w.start <= s && e <= w.end);
  const taken: Range[] = [];
  const lost: { b: PciFunction['bars'][number]; f: PciFunction }[] = [];
  for (const f of fns.filter((x) => x.bus === 0)) {
    for (const b of f.bars) {
      if (b.start === undefined) continue;
      // The VGA ROM is the shadow copy at 0xc0000; other ROMs are resources like BARs.
      if (b.rom && f.driver === 'VGA') continue;
      if (inside(b.start, b.start + b.size - 1n)) taken.push({ start: b.start, end: b.start + b.size - 1n });
      else lost.push({ b, f });
    }
  }
  // Stable: equal sizes keep bus/device order.
  lost.sort((x, y) => (x.b.size > y.b.size ? -1 : x.b.size < y.b.size ? 1 : 0));
  for (const { b } of lost) {
    const size = b.size;
    b.firmwareStart = b.start;
    b.start = undefined;
    for (const w of windows) {
      let at = ((w.start + size - 1n) / size) * size;
      for (;;) {
        const clash = taken.find((t) => t.start <= at + size - 1n && at <= t.end);
        if (!clash) break;
        at = ((clash.end + 1n + size - 1n) / size) * size;
      }
      if (at + size - 1n <= w.end) {
        b.start = at;
        taken.push({ start: at, end: at + size - 1n });
        break;
      }
    }
  }
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
    if (parent && !(parent.start === e.start && parent.end === e.end && /^PCI (MMCONFIG|ECAM) 0000 \[bus 00-ff\]$/.test(e.name))) {
      (parent.children ??= []).push(e);
    } else if (parent) {
      // MMCONFIG claims the same range as the e820 Reserved entry and becomes its parent.
      out.splice(out.indexOf(parent), 1, { ...e, children: [parent, ...(e.children ?? [])] });
    } else out.push(e);
  }
  return out;
}
