/**
 * The lspci / CXL / DAX / iomem views of a running node: what the layout
 * predicted (memfabric/layout) beside what the guest shows (`memfabric view
 * --format json`), row by row, rows that differ carrying the class `diff`;
 * and `memfabric verify --format json`'s differences for the node.
 * Pure: HTML strings from data, no vscode import.
 */
import type { LayoutNode } from '../../server/src/lsp/protocol';
import { human } from '../../server/src/engine/text/sizes';

export function esc(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export type GuestViewKind = 'lspci' | 'cxl' | 'daxctl' | 'iomem';

export interface Row {
  key: string;
  label: string;
  predicted: string | null;
  guest: string | null;
  diff: boolean;
}

/** `memfabric view --format json FILE NODE lspci` */
export interface LspciJson {
  node: string;
  devices: { bdf: string; vendorDevice: string; class: string; description: string; bars: { bar: number; start: string | null; size: string; bits: number; prefetchable: boolean }[] }[];
}

export interface IomemJson {
  node: string;
  iomem: IomemTree[];
}
interface IomemTree {
  start: string;
  end: string;
  name: string;
  children?: IomemTree[];
}

export interface VerifyJson {
  nodes: { name: string; ok: boolean; differences: { what: string; predicted: string | null; guest: string | null }[] }[];
}

const big = (s: string | number | bigint) => BigInt(s);
const hx = (v: bigint) => '0x' + v.toString(16);
const bdf = (s: string) => (/^[0-9a-f]{4,}:/.test(s) ? s : `0000:${s}`);

function rowsByKey(pred: Map<string, { label: string; text: string; order: bigint }>, guest: Map<string, { label: string; text: string; order: bigint }>): Row[] {
  const keys = [...new Set([...pred.keys(), ...guest.keys()])];
  const order = (k: string) => pred.get(k)?.order ?? guest.get(k)?.order ?? 0n;
  keys.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : a.localeCompare(b)));
  return keys.map((k) => {
    const p = pred.get(k);
    const g = guest.get(k);
    return { key: k, label: p?.label ?? g?.label ?? k, predicted: p?.text ?? null, guest: g?.text ?? null, diff: p?.text !== g?.text };
  });
}

const barText = (start: bigint | null, size: bigint, bits: number, pref: boolean) =>
  `${start === null ? 'unassigned' : `${hx(start)}–${hx(start + size - 1n)}`}  ${bits}-bit${pref ? ' pref' : ''}  ${human(size)}`;

export function lspciRows(layout: LayoutNode, guest: LspciJson): Row[] {
  const pred = new Map<string, { label: string; text: string; order: bigint }>();
  for (const b of layout.bars) {
    const start = big(b.start);
    pred.set(`${bdf(b.bdf)} BAR${b.bar}`, { label: `${bdf(b.bdf)} BAR${b.bar} · ${b.device}`, text: barText(start, big(b.size), b.bits, b.prefetchable), order: start });
  }
  const g = new Map<string, { label: string; text: string; order: bigint }>();
  for (const d of guest.devices ?? []) {
    for (const b of d.bars) {
      const start = b.start === null ? null : big(b.start);
      g.set(`${bdf(d.bdf)} BAR${b.bar}`, { label: `${bdf(d.bdf)} BAR${b.bar} · ${d.description}`, text: barText(start, big(b.size), b.bits, b.prefetchable), order: start ?? -1n });
    }
  }
  return rowsByKey(pred, g);
}

export function iomemRows(layout: LayoutNode, guest: IomemJson): Row[] {
  const text = (s: bigint, e: bigint, name: string) => `${hx(s)}–${hx(e)}  ${name}  (${human(e - s + 1n)})`;
  const pred = new Map<string, { label: string; text: string; order: bigint }>();
  for (const e of layout.iomem) {
    const s = big(e.start);
    if (s < 0x100000n) continue;
    pred.set(hx(s), { label: hx(s), text: text(s, big(e.end), e.name), order: s });
  }
  const g = new Map<string, { label: string; text: string; order: bigint }>();
  for (const e of guest.iomem ?? []) {
    const s = big(e.start);
    if (s < 0x100000n) continue;
    g.set(hx(s), { label: hx(s), text: text(s, big(e.end), e.name), order: s });
  }
  return rowsByKey(pred, g);
}

/** Every object of a JSON tree that has the key (cxl list / daxctl list nest their objects). */
export function objectsWith(json: unknown, key: string, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (Array.isArray(json)) for (const x of json) objectsWith(x, key, out);
  else if (json && typeof json === 'object') {
    const o = json as Record<string, unknown>;
    if (key in o) out.push(o);
    for (const v of Object.values(o)) if (v && typeof v === 'object') objectsWith(v, key, out);
  }
  return out;
}

const num = (v: unknown): bigint | null => {
  if (typeof v === 'number' && Number.isFinite(v)) return BigInt(Math.round(v));
  if (typeof v === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(v)) return BigInt(v);
  return null;
};

/** CXL: the predicted fixed memory windows against the guest's root decoders (same base and size), then the guest's memdevs. */
export function cxlRows(layout: LayoutNode, guest: unknown): Row[] {
  const pred = new Map<string, { label: string; text: string; order: bigint }>();
  layout.iomem.filter((e) => /^CXL Window/i.test(e.name)).forEach((e) => {
    const s = big(e.start);
    const size = big(e.end) - s + 1n;
    pred.set(hx(s), { label: e.name, text: `${hx(s)}–${hx(s + size - 1n)}  ${human(size)}`, order: s });
  });
  const g = new Map<string, { label: string; text: string; order: bigint }>();
  for (const d of objectsWith(guest, 'decoder')) {
    const name = String(d.decoder);
    if (!/^decoder0\./.test(name)) continue; // root decoders: the CFMWS windows
    const s = num(d.resource);
    const size = num(d.size);
    if (s === null || size === null) continue;
    g.set(hx(s), { label: `${name}${d.interleave_ways ? ` · ${d.interleave_ways}-way` : ''}`, text: `${hx(s)}–${hx(s + size - 1n)}  ${human(size)}`, order: s });
  }
  const rows = rowsByKey(pred, g);
  // (an endpoint holds its memdev as an object under the same key: only the memdev objects themselves)
  for (const m of objectsWith(guest, 'memdev').filter((o) => typeof o.memdev === 'string')) {
    const parts = [
      num(m.pmem_size) !== null ? `pmem ${human(num(m.pmem_size)!)}` : '',
      num(m.ram_size) !== null ? `ram ${human(num(m.ram_size)!)}` : '',
      m.serial !== undefined ? `serial ${String(m.serial)}` : '',
      m.host ? `on ${String(m.host)}` : '',
    ].filter(Boolean);
    rows.push({ key: `memdev ${String(m.memdev)}`, label: `memdev ${String(m.memdev)}`, predicted: null, guest: parts.join('  ') || 'present', diff: false });
  }
  return rows;
}

/** DAX: predicted soft-reserved (SPM) ranges against the guest's dax devices of the same size; other dax devices listed. */
export function daxRows(layout: LayoutNode, guest: unknown): Row[] {
  const soft = [...layout.iomem.map((e) => ({ s: big(e.start), e: big(e.end), n: e.name })), ...layout.e820.map((e) => ({ s: big(e.start), e: big(e.end), n: e.type }))]
    .filter((x) => /soft reserved/i.test(x.n))
    .filter((x, i, a) => a.findIndex((y) => y.s === x.s && y.e === x.e) === i);
  const devs = objectsWith(guest, 'chardev').map((d) => ({ name: String(d.chardev), size: num(d.size), text: [num(d.size) !== null ? human(num(d.size)!) : '', d.mode ? `mode ${String(d.mode)}` : '', d.align ? `align ${human(num(d.align) ?? 0n)}` : '', d.target_node !== undefined ? `node ${String(d.target_node)}` : ''].filter(Boolean).join('  ') }));
  const used = new Set<number>();
  const rows: Row[] = soft.map((x) => {
    const size = x.e - x.s + 1n;
    const i = devs.findIndex((d, j) => !used.has(j) && d.size === size);
    if (i >= 0) used.add(i);
    return { key: hx(x.s), label: `Soft Reserved ${hx(x.s)}`, predicted: `${hx(x.s)}–${hx(x.e)}  ${human(size)}`, guest: i >= 0 ? `${devs[i].name}  ${devs[i].text}` : null, diff: i < 0 };
  });
  devs.forEach((d, j) => {
    if (!used.has(j)) rows.push({ key: d.name, label: d.name, predicted: null, guest: d.text || 'present', diff: false });
  });
  return rows;
}

export function rowsTable(rows: Row[], heads: [string, string, string] = ['', 'predicted (memfabric layout)', 'guest']): string {
  if (!rows.length) return '<p class="empty">nothing to compare</p>';
  const body = rows
    .map((r) => `<tr class="${r.diff ? 'diff' : 'same'}" data-key="${esc(r.key)}"><th scope="row">${esc(r.label)}</th><td>${r.predicted === null ? '<span class="none">—</span>' : esc(r.predicted)}</td><td>${r.guest === null ? '<span class="none">—</span>' : esc(r.guest)}</td></tr>`)
    .join('\n');
  return `<table class="compare"><thead><tr>${heads.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export function verifySection(v: VerifyJson | undefined, node: string, what: RegExp, error?: string): string {
  if (error) return `<section class="verify"><h2>memfabric verify</h2><p class="error">${esc(error)}</p></section>`;
  const n = v?.nodes.find((x) => x.name === node);
  if (!n) return '';
  const diffs = n.differences.filter((d) => what.test(d.what));
  if (!diffs.length) return `<section class="verify ok"><h2>memfabric verify</h2><p>${esc(node)}: the guest equals the prediction here.</p></section>`;
  return `<section class="verify"><h2>memfabric verify: ${diffs.length} difference(s)</h2>${rowsTable(
    diffs.map((d, i) => ({ key: `v${i}`, label: d.what, predicted: d.predicted, guest: d.guest, diff: true })),
    ['', 'predicted', 'guest'],
  )}</section>`;
}

export function summary(rows: Row[]): string {
  const n = rows.filter((r) => r.diff).length;
  return n ? `<p class="summary has-diff">${n} of ${rows.length} row(s) differ (marked)</p>` : `<p class="summary">all ${rows.length} row(s) agree</p>`;
}
