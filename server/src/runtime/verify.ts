/**
 * memfabric verify: the layout prediction (as `memfabric boot` runs the node,
 * agent device included) against what the running guest shows, compared as
 * test/layout.test.ts does: top-level /proc/iomem entries from 1 MiB up, the
 * firmware E820 map (/sys/firmware/memmap) and every memory BAR (lspci, with
 * exact BAR indexes from sysfs; sysfs alone in a guest without lspci).
 */
import type { NodeLayout } from '../engine/layout/index';
import { GuestSnapshot, parseIomem, parseLspci, parseMemmap, parsePciResources, sysfsPciDevices } from './guest-view';

export interface Difference {
  what: string;
  predicted: string | null;
  guest: string | null;
}

export interface NodeVerification {
  name: string;
  ok: boolean;
  differences: Difference[];
}

const hx = (v: bigint) => v.toString(16);

interface Keyed {
  key: string;
  order: bigint;
  text: string;
}

/** Align two lists by key (the start address, or BDF + BAR): differing, missing and extra entries. */
function diff(what: string, predicted: Keyed[], guest: Keyed[]): Difference[] {
  const g = new Map(guest.map((e) => [e.key, e]));
  const p = new Map(predicted.map((e) => [e.key, e]));
  const keys = [...new Map([...predicted, ...guest].map((e) => [e.key, e])).values()].sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : a.key.localeCompare(b.key)));
  const out: Difference[] = [];
  for (const { key } of keys) {
    const pe = p.get(key);
    const ge = g.get(key);
    if (pe?.text === ge?.text) continue;
    out.push({ what, predicted: pe?.text ?? null, guest: ge?.text ?? null });
  }
  return out;
}

export function compareLayout(name: string, L: NodeLayout, snap: GuestSnapshot): NodeVerification {
  const differences: Difference[] = [];

  const realTop = parseIomem(snap.iomem).filter((e) => e.start >= 0x100000n);
  differences.push(
    ...diff(
      '/proc/iomem',
      L.iomem.map((e) => ({ key: hx(e.start), order: e.start, text: `${hx(e.start)}-${hx(e.end)} : ${e.name}` })),
      realTop.map((e) => ({ key: hx(e.start), order: e.start, text: `${hx(e.start)}-${hx(e.end)} : ${e.name}` })),
    ),
  );

  differences.push(
    ...diff(
      '/sys/firmware/memmap',
      L.e820.map((e) => ({ key: hx(e.start), order: e.start, text: `${hx(e.start)}-${hx(e.end)} ${e.type}` })),
      parseMemmap(snap.memmap).map((e) => ({ key: hx(e.start), order: e.start, text: `${hx(e.start)}-${hx(e.end)} ${e.type}` })),
    ),
  );

  const bar = (bdf: string, b: { bar: number; start: bigint; size: bigint; bits: number; prefetchable: boolean }): Keyed => ({
    key: `${bdf} BAR${b.bar}`,
    order: b.start,
    text: `${bdf} BAR${b.bar} ${b.start < 0n ? 'unassigned' : hx(b.start)} size ${hx(b.size)} ${b.bits}-bit${b.prefetchable ? ' pref' : ''}`,
  });
  // A guest without lspci (a user's image): the same BARs from sysfs.
  const resources = parsePciResources(snap.resources);
  const listed = parseLspci(snap.lspci, resources);
  const devs = listed.length ? listed : sysfsPciDevices(resources);
  differences.push(
    ...diff(
      'PCI memory BAR',
      L.bars.map((b) => bar(b.bdf, b)),
      devs.flatMap((d) => d.bars.map((b) => bar(d.bdf, b))),
    ),
  );
  return { name, ok: differences.length === 0, differences };
}
