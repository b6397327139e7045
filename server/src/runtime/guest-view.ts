/**
 * What a running guest sees, read through the memfabric agent and parsed:
 * /proc/iomem (a tree), `lspci -v -nn` (devices and memory BARs, exact BAR
 * indexes from /sys/bus/pci/devices/* /resource), /sys/firmware/memmap.
 * The layout tests read their recordings with the same functions.
 */
import type { ClusterSpec } from './cluster';

export interface GuestIomemEntry {
  start: bigint;
  end: bigint;
  name: string;
  children: GuestIomemEntry[];
}

export function parseIomem(text: string): GuestIomemEntry[] {
  const root: GuestIomemEntry = { start: 0n, end: 0n, name: '', children: [] };
  const stack: GuestIomemEntry[] = [root];
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    const m = /^( *)([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$/.exec(raw);
    if (!m) continue;
    const depth = Math.floor(m[1].length / 2);
    const entry: GuestIomemEntry = { start: BigInt('0x' + m[2]), end: BigInt('0x' + m[3]), name: m[4], children: [] };
    const parent = stack[Math.min(depth, stack.length - 1)];
    parent.children.push(entry);
    stack.length = Math.min(depth, stack.length - 1) + 1;
    stack.push(entry);
  }
  return root.children;
}

/** Depth-first list of a /proc/iomem tree, with each entry's depth. */
export function flattenIomem(entries: GuestIomemEntry[], depth = 0, out: (GuestIomemEntry & { depth: number })[] = []): (GuestIomemEntry & { depth: number })[] {
  for (const e of entries) {
    out.push({ ...e, depth });
    flattenIomem(e.children, depth + 1, out);
  }
  return out;
}

const SIZE_MUL: Record<string, bigint> = { '': 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n, T: 1n << 40n, P: 1n << 50n };

export function parseSize(s: string): bigint {
  const m = /^(\d+)([KMGTP]?)$/.exec(s.trim());
  if (!m) throw new Error(`bad lspci size ${JSON.stringify(s)}`);
  return BigInt(m[1]) * SIZE_MUL[m[2]];
}

export interface PciResources {
  bdf: string;
  vendorDevice: string;
  class: string;
  resources: { index: number; start: string; end: string; flags: string }[];
}

/** Output of: for d in /sys/bus/pci/devices/*; do echo "DEV ${d##* /} vendor device class"; cat $d/resource; done */
export function parsePciResources(text: string): PciResources[] {
  const out: PciResources[] = [];
  let cur: PciResources | undefined;
  let i = 0;
  for (const l of text.split('\n')) {
    const m = /^DEV (\S+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+)/.exec(l);
    if (m) {
      cur = { bdf: m[1], vendorDevice: `${m[2]}:${m[3]}`, class: `0x${m[4]}`, resources: [] };
      i = 0;
      out.push(cur);
      continue;
    }
    const r = /^(0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+)$/.exec(l.trim());
    if (r && cur) {
      const index = i++;
      if (BigInt(r[1]) !== 0n || BigInt(r[2]) !== 0n || BigInt(r[3]) !== 0n) cur.resources.push({ index, start: r[1], end: r[2], flags: r[3] });
    }
  }
  return out;
}

export interface GuestBar {
  bar: number;
  start: bigint;
  size: bigint;
  bits: 32 | 64;
  prefetchable: boolean;
}

export interface GuestPciDevice {
  bdf: string;
  vendorDevice: string;
  class: string;
  description: string;
  bars: GuestBar[];
}

const HEADER_RE = /^((?:[0-9a-f]{4,}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) ([^[]*)\[([0-9a-f]{4})\]: (.*?)\[([0-9a-f]{4}):([0-9a-f]{4})\]/;
const MEM_RE = /^\s+(?:Region (\d+): )?Memory at ([0-9a-f]+|<unassigned>|<ignored>) \((32-bit|64-bit|low-1M), (non-prefetchable|prefetchable)\)((?: \[[a-z]+\])*)(?: \[size=([0-9]+[KMGTP]?)\])?/;
const IO_RE = /^\s+(?:Region (\d+): )?I\/O ports at ([0-9a-f]+|<unassigned>|<ignored>)/;

/** `lspci -v -nn` (or -vv): every device with its memory BARs (BAR index from sysfs when given). */
export function parseLspci(text: string, pciResources?: PciResources[]): GuestPciDevice[] {
  const devs: GuestPciDevice[] = [];
  let dev: GuestPciDevice | undefined;
  let next = 0;
  for (const line of text.split('\n')) {
    const h = HEADER_RE.exec(line);
    if (h) {
      const bdf = /^[0-9a-f]{4,}:/.test(h[1]) && h[1].split(':').length === 3 ? h[1] : `0000:${h[1]}`;
      dev = { bdf, vendorDevice: `${h[5]}:${h[6]}`, class: h[3], description: `${h[2].trim()}: ${h[4].trim()}`, bars: [] };
      devs.push(dev);
      next = 0;
      continue;
    }
    if (!dev) continue;
    const io = IO_RE.exec(line);
    if (io) {
      next = (io[1] !== undefined ? Number(io[1]) : next) + 1;
      continue;
    }
    const m = MEM_RE.exec(line);
    if (!m) continue;
    const bits = m[3] === '64-bit' ? 64 : 32;
    const start = /^[0-9a-f]+$/.test(m[2]) ? BigInt('0x' + m[2]) : -1n;
    let bar: number;
    if (m[1] !== undefined) bar = Number(m[1]);
    else {
      const d = dev;
      const res = pciResources?.find((x) => x.bdf === d.bdf)?.resources.find((r) => r.index < 6 && start >= 0n && BigInt(r.start) === start);
      bar = res ? res.index : next;
    }
    next = bar + (bits === 64 ? 2 : 1);
    dev.bars.push({ bar, start, size: m[6] !== undefined ? parseSize(m[6]) : 0n, bits, prefetchable: m[4] === 'prefetchable' });
  }
  return devs;
}

// Linux's resource flags (include/linux/ioport.h), as /sys/bus/pci/devices/*/resource prints them.
const IORESOURCE_MEM = 0x200n;
const IORESOURCE_PREFETCH = 0x2000n;
const IORESOURCE_MEM_64 = 0x100000n;
const IORESOURCE_UNSET = 0x20000000n;

/**
 * Every device's memory BARs from sysfs alone (resources 0-5 that are memory),
 * for a guest without lspci (a user's image): the same devices and BARs as
 * parseLspci gives, without the descriptions lspci's database adds.
 */
export function sysfsPciDevices(resources: PciResources[]): GuestPciDevice[] {
  return resources.map((r) => ({
    bdf: r.bdf,
    vendorDevice: r.vendorDevice,
    class: r.class.replace(/^0x/, '').slice(0, 4),
    description: '',
    bars: r.resources
      .filter((x) => x.index < 6 && (BigInt(x.flags) & IORESOURCE_MEM) !== 0n)
      .map((x) => {
        const flags = BigInt(x.flags);
        const start = BigInt(x.start);
        return {
          bar: x.index,
          start: (flags & IORESOURCE_UNSET) !== 0n ? -1n : start,
          size: BigInt(x.end) - start + 1n,
          bits: (flags & IORESOURCE_MEM_64) !== 0n ? 64 : 32,
          prefetchable: (flags & IORESOURCE_PREFETCH) !== 0n,
        } as GuestBar;
      }),
  }));
}

/** Every memory BAR of `lspci` output, one row each, with its device. */
export function lspciBars(text: string, pciResources?: PciResources[]): (GuestBar & { bdf: string; vendorDevice: string })[] {
  return parseLspci(text, pciResources).flatMap((d) => d.bars.map((b) => ({ bdf: d.bdf, vendorDevice: d.vendorDevice, ...b })));
}

export interface GuestMemmapEntry {
  start: bigint;
  end: bigint;
  type: string;
}

export function parseMemmap(text: string): GuestMemmapEntry[] {
  return text
    .split('\n')
    .filter((l) => /^0x/.test(l))
    .map((l) => {
      const [start, end, ...type] = l.split(' ');
      return { start: BigInt(start), end: BigInt(end), type: type.join(' ') };
    })
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

export interface GuestSnapshot {
  iomem: string;
  lspci: string;
  memmap: string;
  resources: string;
  /** The guest's kernel release (uname -r); '' when not read. */
  kernel?: string;
}

const SECTIONS = ['IOMEM', 'LSPCI', 'MEMMAP', 'RESOURCES', 'KERNEL'] as const;
const MARK = '@@MEMFABRIC@@';

/** One agent round trip: everything verify and view need. */
export const SNAPSHOT_SCRIPT = [
  `echo ${MARK}IOMEM; cat /proc/iomem`,
  `echo ${MARK}LSPCI; lspci -v -nn`,
  `echo ${MARK}MEMMAP; for d in /sys/firmware/memmap/*; do [ -d "$d" ] && echo "$(cat $d/start) $(cat $d/end) $(cat $d/type)"; done`,
  `echo ${MARK}RESOURCES; for d in /sys/bus/pci/devices/*; do [ -d "$d" ] || continue; echo "DEV \${d##*/} $(cat $d/vendor) $(cat $d/device) $(cat $d/class)"; cat $d/resource; done`,
  `echo ${MARK}KERNEL; cat /proc/sys/kernel/osrelease`,
  'true',
].join('\n');

export function splitSnapshot(stdout: string): GuestSnapshot {
  const parts: Record<string, string[]> = {};
  let cur: string | undefined;
  for (const l of stdout.split('\n')) {
    if (l.startsWith(MARK)) {
      cur = l.slice(MARK.length).trim();
      parts[cur] = [];
      continue;
    }
    if (cur) parts[cur].push(l);
  }
  const get = (k: (typeof SECTIONS)[number]) => (parts[k] ?? []).join('\n');
  return { iomem: get('IOMEM'), lspci: get('LSPCI'), memmap: get('MEMMAP'), resources: get('RESOURCES'), kernel: get('KERNEL').trim() };
}

export async function guestSnapshot(spec: ClusterSpec, node: string, timeoutMs = 60_000): Promise<GuestSnapshot> {
  const { execInNode } = await import('./cluster');
  const r = await execInNode(spec, node, ['sh', '-c', SNAPSHOT_SCRIPT], timeoutMs);
  if (r.exitCode !== 0) throw new Error(`reading the guest's memory map on ${node} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return splitSnapshot(r.stdout);
}

// ---------------------------------------------------------------------------
// cxl list / daxctl list as text

/** The key naming an object in `cxl list -v` / `daxctl list` output, in order of preference. */
const TOOL_ID_KEYS = ['bus', 'port', 'endpoint', 'memdev', 'decoder', 'region', 'dport', 'target', 'chardev', 'dev'];
const TOOL_SIZE_KEY = /(^|_)size$|^max_available_extent$|^align$/;
const TOOL_ADDR_KEY = /(^|_)resource$/;

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1 && v % 1024 === 0) {
    v /= 1024;
    i++;
  }
  return i ? `${v} ${units[i]}` : `${n} B`;
}

/**
 * The JSON that `cxl list -v` or `daxctl list` prints, as an indented tree:
 * one line per object (`kind id  key value ...`), sizes in binary units,
 * resources in hex; nested arrays (ports, endpoints, decoders, targets,
 * regions, mappings, devices) one level deeper.
 */
export function renderToolTree(data: unknown): string[] {
  const lines: string[] = [];
  const scalar = (k: string, v: unknown): string => {
    if (typeof v === 'number' && TOOL_SIZE_KEY.test(k)) return humanBytes(v);
    if (typeof v === 'number' && (TOOL_ADDR_KEY.test(k) || k === 'serial')) return '0x' + v.toString(16);
    return String(v);
  };
  const walk = (o: unknown, depth: number): void => {
    if (Array.isArray(o)) {
      for (const x of o) walk(x, depth);
      return;
    }
    if (!o || typeof o !== 'object') {
      lines.push(`${'  '.repeat(depth)}${String(o)}`);
      return;
    }
    const rec = o as Record<string, unknown>;
    const idKey = TOOL_ID_KEYS.find((k) => k in rec && (typeof rec[k] === 'string' || typeof rec[k] === 'number'));
    const attrs = Object.entries(rec).filter(([k, v]) => k !== idKey && (v === null || typeof v !== 'object'));
    const nested = Object.entries(rec).filter(([k, v]) => k !== idKey && v !== null && typeof v === 'object');
    const head = idKey ? `${idKey} ${String(rec[idKey])}` : '';
    const body = attrs.map(([k, v]) => `${k} ${scalar(k, v)}`).join('  ');
    const line = [head, body].filter(Boolean).join('  ');
    if (line) lines.push(`${'  '.repeat(depth)}${line}`);
    for (const [k, v] of nested) {
      // an object without an id of its own (e.g. {"anon memdevs": [...]}) is a group: name it
      if (!idKey && !line) lines.push(`${'  '.repeat(depth)}${k}:`);
      walk(v, depth + 1);
    }
  };
  walk(data, 0);
  return lines;
}
