/**
 * The memory-map picture's model: a node's address space (from the server's
 * memfabric/layout request) cut into segments, each with a drawn height, and
 * the document's diagnostics placed on the segments whose addresses they name.
 * Pure: no vscode import (test/client-package.test.ts runs it under node).
 *
 * Scale: heights are proportional to size, except that a segment that dwarfs
 * the rest (a hole BREAK_RATIO times larger than the largest region, or any
 * segment BREAK_RATIO times larger than everything else together: 948 GiB of
 * nothing next to a few GiB, 160 TB next to MiBs) is drawn "broken" at a fixed
 * height with a break marker, and small segments get a minimum height.
 */
import type { LayoutNode } from '../../server/src/lsp/protocol';
import { human } from '../../server/src/engine/text/sizes';

export type RegionKind =
  | 'ram'
  | 'hole'
  | 'pci-window'
  | 'bar'
  | 'cxl-window'
  | 'reserved'
  | 'soft-reserved'
  | 'pmem'
  | 'mmconfig'
  | 'mmio'
  | 'other';

export interface MapBar {
  kind: 'bar';
  start: string;
  end: string;
  label: string;
  size: string;
  diags: number[];
}

export interface MapSegment {
  kind: RegionKind;
  /** 0x hex, lower case; end inclusive. */
  start: string;
  end: string;
  name: string;
  /** Human size ("1.75 GiB") and hex size. */
  size: string;
  sizeHex: string;
  /** Drawn height in px. */
  height: number;
  /** Not to scale: broken (a huge segment) or raised to the minimum height. */
  scale: 'proportional' | 'minimum' | 'broken';
  bars: MapBar[];
  diags: number[];
}

export interface MapDiagnostic {
  message: string;
  code?: string;
  severity: 'error' | 'warning' | 'information' | 'hint';
  /** 0-based line in the document. */
  line: number;
  /** Indexes of the segments it was placed on (empty: shown in the list only). */
  placed: number[];
}

export interface MapModel {
  node: string;
  qemuVersion: string;
  /** SeaBIOS version of the prediction. */
  firmware?: string;
  warning?: string;
  /** "confirmed by QEMU 10.0.2", or what QEMU said otherwise (the server's background probe). */
  probe?: { confirmed: boolean; text: string };
  segments: MapSegment[];
  diagnostics: MapDiagnostic[];
  /** Total address space shown (human). */
  top: string;
}

export const BREAK_RATIO = 4n;
const TOTAL_PX = 720;
const MIN_PX = 22;
const BREAK_PX = 46;

const hx = (v: bigint) => '0x' + v.toString(16);

export function kindOf(name: string): RegionKind {
  if (/^System RAM/i.test(name)) return 'ram';
  if (/^Soft Reserved/i.test(name)) return 'soft-reserved';
  if (/^(Reserved|ACPI|RAM buffer)/i.test(name)) return 'reserved';
  if (/MMCONFIG|ECAM/i.test(name)) return 'mmconfig';
  if (/^PCI Bus/i.test(name)) return 'pci-window';
  if (/^CXL Window/i.test(name)) return 'cxl-window';
  if (/Persistent Memory/i.test(name)) return 'pmem';
  if (/^(IOAPIC|HPET|Local APIC|dmar|pnp)/i.test(name)) return 'mmio';
  return 'other';
}

interface Raw {
  kind: RegionKind;
  start: bigint;
  end: bigint;
  name: string;
}

/** Segments of the node's address space: e820 below 1 MiB, /proc/iomem's top level above, holes between. */
export function segmentsOf(node: LayoutNode): Raw[] {
  const raw: Raw[] = [];
  for (const e of node.e820) {
    const s = BigInt(e.start);
    const en = BigInt(e.end);
    if (s >= 0x100000n) continue;
    raw.push({ kind: kindOf(e.type), start: s, end: en < 0x100000n ? en : 0xfffffn, name: `${e.type} (E820)` });
  }
  for (const e of node.iomem) {
    const s = BigInt(e.start);
    if (s < 0x100000n) continue;
    raw.push({ kind: kindOf(e.name), start: s, end: BigInt(e.end), name: e.name });
  }
  raw.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Raw[] = [];
  let next = 0n;
  for (const r of raw) {
    if (r.end < next) continue; // nested or duplicate: the top level only
    const start = r.start < next ? next : r.start;
    if (start > next) out.push({ kind: 'hole', start: next, end: start - 1n, name: 'hole (nothing decodes here)' });
    out.push({ ...r, start });
    next = r.end + 1n;
  }
  return out;
}

/**
 * Which segments are drawn broken: a hole larger than BREAK_RATIO times the largest region that is not a hole
 * (the terabyte of nothing below the 1 TiB reserved range), then, repeatedly, any segment larger than
 * BREAK_RATIO times all the other unbroken ones together.
 */
export function brokenSet(sizes: bigint[], holes: boolean[] = []): Set<number> {
  const broken = new Set<number>();
  let largest = 0n;
  sizes.forEach((s, i) => {
    if (!holes[i] && s > largest) largest = s;
  });
  if (largest > 0n) sizes.forEach((s, i) => {
    if (holes[i] && s > BREAK_RATIO * largest) broken.add(i);
  });
  for (;;) {
    let total = 0n;
    sizes.forEach((s, i) => {
      if (!broken.has(i)) total += s;
    });
    let found = -1;
    sizes.forEach((s, i) => {
      if (found < 0 && !broken.has(i) && s > BREAK_RATIO * (total - s)) found = i;
    });
    if (found < 0 || sizes.length - broken.size <= 1) return broken;
    broken.add(found);
  }
}

export interface DiagnosticInput {
  message: string;
  code?: string;
  severity: MapDiagnostic['severity'];
  line: number;
}

/** Addresses a diagnostic message names (0x… numbers; sizes in parentheses are human text and are not matched). */
export function addressesIn(message: string): bigint[] {
  const out: bigint[] = [];
  for (const m of message.matchAll(/\b0x([0-9a-fA-F]+)\b/g)) {
    const before = message.slice(Math.max(0, m.index! - 14), m.index!);
    // sizes: "BAR2 of 0x…", "size 0x…", "needs 0x…", "(0x…)"; addresses: "at 0x…", "0x…–0x…"
    if (/(\bof|\bsize|\bneeds?|\bholds|\buses?|\btotal space[a-z ]*|\()\s*$/i.test(before)) continue;
    out.push(BigInt('0x' + m[1]));
  }
  return out;
}

/** Codes whose diagnostics concern the memory map even when they name no address. */
export const LAYOUT_CODES = new Set([
  'layout-placement', 'cxl-bar-overlap', 'memmap-outside-ram', 'bar-beyond-phys-bits', 'pci-32bit-exhausted',
  'memory-device-space', 'max-ram-below-4g', 'cxl-fmw-size-256m', 'cxl-fmw-granularity', 'cxl-fmw-ways',
  'ivshmem-size-pow2', 'dax-align', 'slots-too-many', 'memory-device-needs-maxmem', 'maxmem-below-ram',
]);

export function buildModel(node: LayoutNode, diagnostics: DiagnosticInput[] = []): MapModel {
  const raw = segmentsOf(node);
  const sizes = raw.map((r) => r.end - r.start + 1n);
  const broken = brokenSet(sizes, raw.map((r) => r.kind === 'hole'));
  let scaled = 0n;
  sizes.forEach((s, i) => {
    if (!broken.has(i)) scaled += s;
  });
  const px = (s: bigint) => (scaled > 0n ? Number((s * 1_000_000n) / scaled) / 1_000_000 : 0) * TOTAL_PX;
  const segments: MapSegment[] = raw.map((r, i) => {
    const size = sizes[i];
    const h = px(size);
    const scale: MapSegment['scale'] = broken.has(i) ? 'broken' : h < MIN_PX ? 'minimum' : 'proportional';
    return {
      kind: r.kind,
      start: hx(r.start),
      end: hx(r.end),
      name: r.name,
      size: human(size),
      sizeHex: hx(size),
      height: scale === 'broken' ? BREAK_PX : Math.round(Math.max(MIN_PX, h)),
      scale,
      bars: [],
      diags: [],
    };
  });
  const find = (a: bigint) => raw.findIndex((r) => r.start <= a && a <= r.end);
  for (const b of [...node.bars].sort((x, y) => (BigInt(x.start) < BigInt(y.start) ? -1 : 1))) {
    const s = BigInt(b.start);
    const e = s + BigInt(b.size) - 1n;
    const i = find(s);
    if (i < 0) continue;
    segments[i].bars.push({
      kind: 'bar',
      start: hx(s),
      end: hx(e),
      label: `${b.device} BAR${b.bar} (${b.bdf.replace(/^0000:/, '')}, ${b.bits}-bit${b.prefetchable ? ' pref' : ''})`,
      size: human(BigInt(b.size)),
      diags: [],
    });
  }
  const diags: MapDiagnostic[] = [];
  for (const d of diagnostics) {
    const placed = new Set<number>();
    const idx = diags.length;
    for (const a of addressesIn(d.message)) {
      const i = find(a);
      if (i < 0 || placed.has(i)) continue;
      // a bare size (0x1000) would land in low memory: only addresses that start or end a segment/BAR, or fall inside one above 1 MiB
      if (a < 0x100000n && a !== 0n) continue;
      placed.add(i);
      segments[i].diags.push(idx);
      const bar = segments[i].bars.find((b) => BigInt(b.start) <= a && a <= BigInt(b.end));
      if (bar && !bar.diags.includes(idx)) bar.diags.push(idx);
    }
    if (placed.size || (d.code && LAYOUT_CODES.has(d.code)) || d.severity === 'error') {
      diags.push({ ...d, placed: [...placed] });
    }
  }
  const last = raw.length ? raw[raw.length - 1].end + 1n : 0n;
  return { node: node.name, qemuVersion: node.qemuVersion, firmware: node.firmware, warning: node.warning, probe: probeLine(node), segments, diagnostics: diags, top: `${hx(last)} (${human(last)})` };
}

/** The probe's word on a node, for the view's header. */
export function probeLine(node: LayoutNode): MapModel['probe'] {
  const p = node.probe;
  if (!p) return undefined;
  if (p.confirmed) return { confirmed: true, text: `confirmed by QEMU ${p.qemu}: its firmware built this E820 table, these BARs, 64-bit hole and CXL windows` };
  if (p.refused) return { confirmed: false, text: `QEMU ${p.qemu} refuses this node: ${p.refused}` };
  if (p.firmwareStop) return { confirmed: false, text: `QEMU ${p.qemu} starts, but its firmware stops: ${p.firmwareStop}` };
  if (p.inconclusive) return { confirmed: false, text: `QEMU ${p.qemu} could not be asked: ${p.inconclusive}` };
  return { confirmed: false, text: `QEMU ${p.qemu} disagrees (QEMU is right): ${p.disagreements.join('; ')}` };
}
