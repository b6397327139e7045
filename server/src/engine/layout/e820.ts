/**
 * The E820 map: what QEMU 7.2 passes (etc/e820), what SeaBIOS 1.16.2 makes of
 * it (src/fw/paravirt.c, memmap.c: BIOS areas, the q35 MMCONFIG and RCRB, the
 * top of low RAM it keeps for its tables), and what Linux makes of kernel
 * memmap= options (arch/x86/kernel/e820.c). /sys/firmware/memmap shows the
 * firmware's map; /proc/iomem shows the kernel's.
 */
import { MemmapEntry } from '../model/model';
import { MiB } from '../text/sizes';
import { Platform, G4 } from './platform';

export const E820_RAM = 1n;
export const E820_RESERVED = 2n;
export const E820_ACPI = 3n;
export const E820_NVS = 4n;
export const E820_UNUSABLE = 5n;
export const E820_PMEM = 7n;
export const E820_PRAM = 12n;
export const E820_SOFT_RESERVED = 0xefffffffn;

export interface E820Entry {
  start: bigint;
  /** Inclusive, as the guest prints it. */
  end: bigint;
  type: bigint;
}

/** The name /sys/firmware/memmap/N/type prints. */
export function firmwareTypeName(t: bigint): string {
  switch (t) {
    case E820_RAM:
      return 'System RAM';
    case E820_RESERVED:
      return 'Reserved';
    case E820_ACPI:
      return 'ACPI Tables';
    case E820_NVS:
      return 'ACPI Non-volatile Storage';
    case E820_UNUSABLE:
      return 'Unusable memory';
    case E820_PMEM:
      return 'Persistent Memory';
    case E820_PRAM:
      return 'Persistent Memory (legacy)';
    case E820_SOFT_RESERVED:
      return 'Soft Reserved';
    default:
      return 'Unknown E820 type';
  }
}

/** The top of low RAM SeaBIOS reserves for its own tables (measured: q35 132 KiB, pc 128 KiB). */
function seabiosHighTable(p: Platform): bigint {
  return p.base === 'q35' ? 0x21000n : 0x20000n;
}

export function firmwareE820(p: Platform): E820Entry[] {
  const out: E820Entry[] = [];
  const add = (start: bigint, size: bigint, type: bigint) => size > 0n && out.push({ start, end: start + size - 1n, type });
  add(0n, 0x9fc00n, E820_RAM);
  add(0x9fc00n, 0x400n, E820_RESERVED);
  add(0xf0000n, 0x10000n, E820_RESERVED);
  const ht = seabiosHighTable(p);
  if (p.below4g > MiB + ht) {
    add(MiB, p.below4g - ht - MiB, E820_RAM);
    add(p.below4g - ht, ht, E820_RESERVED);
  }
  if (p.base === 'q35') {
    add(0xb0000000n, 0x10000000n, E820_RESERVED); // MMCONFIG
    add(0xfed1c000n, 0x4000n, E820_RESERVED); // ICH9 root complex register block
  }
  add(0xfffc0000n, 0x40000n, E820_RESERVED); // BIOS
  add(p.above4gStart, p.above4g, E820_RAM);
  // QEMU 7.1+: the AMD HyperTransport hole below 1 TiB.
  if (p.vendor === 'AuthenticAMD' && p.physBits >= 40) add(0xfd00000000n, 0x300000000n, E820_RESERVED);
  return out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

/**
 * Linux applies memmap= to its copy of the map, then sanitizes it: where
 * entries overlap the larger type wins, and equal neighbours merge.
 */
export function kernelE820(firmware: E820Entry[], memmap: MemmapEntry[]): E820Entry[] {
  let map = firmware.map((e) => ({ ...e }));
  for (const m of memmap) {
    if (m.kind === 'exactmap') map = [];
    else if (m.kind === 'limit' && m.size !== undefined) map = removeRange(map, m.size, (1n << 64n) - 1n, E820_RAM);
    else if (m.size !== undefined && m.start !== undefined) {
      const end = m.start + m.size - 1n;
      if (m.kind === 'convert') {
        if (m.oldType !== undefined && m.newType !== undefined) map = convertRange(map, m.start, end, m.oldType, m.newType);
      } else {
        const types: Record<string, bigint> = { ram: E820_RAM, acpi: E820_ACPI, reserved: E820_RESERVED, pram: E820_PRAM };
        const type = types[m.kind];
        if (type !== undefined) map.push({ start: m.start, end, type });
      }
    }
  }
  return sanitize(map);
}

function removeRange(map: E820Entry[], start: bigint, end: bigint, type: bigint): E820Entry[] {
  const out: E820Entry[] = [];
  for (const e of map) {
    if (e.type !== type || e.end < start || e.start > end) {
      out.push(e);
      continue;
    }
    if (e.start < start) out.push({ ...e, end: start - 1n });
    if (e.end > end) out.push({ ...e, start: end + 1n });
  }
  return out;
}

function convertRange(map: E820Entry[], start: bigint, end: bigint, from: bigint, to: bigint): E820Entry[] {
  const out: E820Entry[] = [];
  for (const e of map) {
    if (e.type !== from || e.end < start || e.start > end) {
      out.push(e);
      continue;
    }
    const s = e.start > start ? e.start : start;
    const t = e.end < end ? e.end : end;
    if (e.start < s) out.push({ ...e, end: s - 1n });
    out.push({ start: s, end: t, type: to });
    if (e.end > t) out.push({ ...e, start: t + 1n });
  }
  return out;
}

function sanitize(map: E820Entry[]): E820Entry[] {
  const points = [...new Set(map.flatMap((e) => [e.start, e.end + 1n]))].sort((a, b) => (a < b ? -1 : 1));
  const out: E820Entry[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const s = points[i];
    const t = points[i + 1] - 1n;
    let type = 0n;
    for (const e of map) if (e.start <= s && e.end >= t && e.type > type) type = e.type;
    if (!type) continue;
    const last = out[out.length - 1];
    if (last && last.type === type && last.end + 1n === s) last.end = t;
    else out.push({ start: s, end: t, type });
  }
  return out;
}

export { G4 };
