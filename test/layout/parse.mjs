/**
 * Parsers for what test/layout/record.mjs recorded in a guest.
 *
 *   parseIomem(text)       /proc/iomem  -> tree of {start, end, name, children}
 *   parseLspciBars(text, pciResources?)
 *                          `lspci -v -nn` or `lspci -vv -nn` -> memory BARs
 *   parseSize(text)        lspci size strings ("16K", "32G", "256") -> bigint
 *
 * BAR indexes: `lspci -vv` prints "Region N:" and gives exact indexes; `lspci -v`
 * does not. For `-v` text the index is taken from the recording's sysfs
 * `pciResources` when given (matched by start address), otherwise it is
 * inferred from the order (each 64-bit BAR takes two slots) – which is wrong
 * for devices with unimplemented BARs in between (e.g. VGA BAR0, BAR2), so
 * prefer `lspciVV` or pass `pciResources`.
 */

/**
 * @typedef {{start: bigint, end: bigint, name: string, children: IomemEntry[]}} IomemEntry
 * @param {string} text
 * @returns {IomemEntry[]} top-level entries, each with nested children
 */
export function parseIomem(text) {
  const root = { children: [] };
  /** stack[i] = last entry at depth i */
  const stack = [root];
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    const m = /^( *)([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$/.exec(raw);
    if (!m) throw new Error(`parseIomem: bad line: ${JSON.stringify(raw)}`);
    const depth = Math.floor(m[1].length / 2);
    const entry = { start: BigInt('0x' + m[2]), end: BigInt('0x' + m[3]), name: m[4], children: [] };
    const parent = stack[Math.min(depth, stack.length - 1)];
    parent.children.push(entry);
    stack.length = Math.min(depth, stack.length - 1) + 1;
    stack.push(entry);
  }
  return root.children;
}

/** Depth-first list of every entry of a parseIomem() tree, with its depth. */
export function flattenIomem(entries, depth = 0, out = []) {
  for (const e of entries) {
    out.push({ ...e, depth });
    flattenIomem(e.children, depth + 1, out);
  }
  return out;
}

const SIZE_MUL = { '': 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n, T: 1n << 40n, P: 1n << 50n };

/** lspci's size strings: "256", "4K", "16M", "32G". */
export function parseSize(s) {
  const m = /^(\d+)([KMGTP]?)$/.exec(s.trim());
  if (!m) throw new Error(`parseSize: bad size ${JSON.stringify(s)}`);
  return BigInt(m[1]) * SIZE_MUL[m[2]];
}

const HEADER_RE = /^((?:[0-9a-f]{4,}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) [^[]*\[[0-9a-f]{4}\]: .*?\[([0-9a-f]{4}):([0-9a-f]{4})\]/;
const MEM_RE = /^\s+(?:Region (\d+): )?Memory at ([0-9a-f]+|<unassigned>|<ignored>) \((32-bit|64-bit|low-1M), (non-prefetchable|prefetchable)\)((?: \[[a-z]+\])*)(?: \[size=([0-9]+[KMGTP]?)\])?/;
const IO_RE = /^\s+(?:Region (\d+): )?I\/O ports at ([0-9a-f]+|<unassigned>|<ignored>)/;

/**
 * @typedef {{bdf: string, vendorDevice: string, bar: number, start: bigint, size: bigint,
 *            bits: 32|64, prefetchable: boolean}} LspciBar
 * @param {string} text  output of `lspci -v -nn` or `lspci -vv -nn`
 * @param {Array<{bdf: string, resources: Array<{index: number, start: string}>}>} [pciResources]
 * @returns {LspciBar[]} memory BARs (I/O BARs and expansion ROMs are not listed)
 */
export function parseLspciBars(text, pciResources) {
  const bars = [];
  let dev;
  let next = 0;
  for (const line of text.split('\n')) {
    const h = HEADER_RE.exec(line);
    if (h) {
      const bdf = /^[0-9a-f]{4,}:/.test(h[1]) && h[1].split(':').length === 3 ? h[1] : `0000:${h[1]}`;
      dev = { bdf, vendorDevice: `${h[2]}:${h[3]}` };
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
    let bar;
    if (m[1] !== undefined) bar = Number(m[1]);
    else {
      const res = pciResources?.find((d) => d.bdf === dev.bdf)?.resources.find((r) => r.index < 6 && BigInt(r.start) === start && start >= 0n);
      bar = res ? res.index : next;
    }
    next = bar + (bits === 64 ? 2 : 1);
    bars.push({
      bdf: dev.bdf,
      vendorDevice: dev.vendorDevice,
      bar,
      start,
      size: m[6] !== undefined ? parseSize(m[6]) : 0n,
      bits,
      prefetchable: m[4] === 'prefetchable',
    });
  }
  return bars;
}

/** Hex string of a bigint, for messages. */
export const hex = (n) => '0x' + n.toString(16);
