/**
 * Hover: where a device, a backend or a CXL window lands in the guest (start,
 * end, size, BAR or window, from the layout model), a size or address value in
 * hex and human units, and the rule behind each diagnostic at the cursor.
 * Markdown out; offsets of the analyzed text.
 */
import { PropInfo, profileLabel } from '../qemu/profile';
import { NodeModel, prop } from '../model/model';
import type { NodeLayout } from '../layout/index';
import { bdf } from '../layout/pci';
import { RULES_BY_CODE } from '../rules/index';
import { hexHuman, human, parseQemuSize } from '../text/sizes';
import { Span } from '../text/source';
import { EditorAnalysis } from './analysis';

export interface HoverResult {
  markdown: string;
  /** The span the hover is about (the smallest thing found). */
  span?: Span;
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** Properties of cxl-type3 that name its memory backend. */
const CXL_MEMDEVS = ['persistent-memdev', 'volatile-memdev', 'memdev'];

function windowLine(w: { index: number; base: bigint; size: bigint; targets: string[] }): string {
  return `**CXL Window ${w.index}**: start **${hex(w.base)}**, end ${hex(w.base + w.size - 1n)}, size ${hexHuman(w.size)}, targets ${w.targets.join(' ')}`;
}

/** The pxb-cxl a device sits behind, following bus= up (root port, switch ports). */
function hostBridgeOf(n: NodeModel, dev: NodeModel['devices'][number]): string | undefined {
  let cur = dev;
  for (let depth = 0; depth < 16; depth++) {
    const bus = prop(cur.props, 'bus')?.value.text;
    const parent = bus ? n.devices.find((d) => d.id?.text === bus) : undefined;
    if (!parent) return undefined;
    if (parent.driver === 'pxb-cxl') return parent.id!.text;
    cur = parent;
  }
  return undefined;
}

function memmapKind(e: NodeModel['memmap'][number]): string {
  if (e.kind === 'convert') return e.newType === 0xefffffffn ? 'Soft Reserved (Specific Purpose Memory)' : `E820 type ${hex(e.newType ?? 0n)}`;
  return { ram: 'System RAM', acpi: 'ACPI Tables', reserved: 'Reserved', pram: 'Persistent Memory (legacy)', exactmap: 'exactmap', limit: 'limit', convert: '' }[e.kind];
}

export function hover(a: EditorAnalysis, off: number): HoverResult | undefined {
  if (!a.doc) return undefined;
  const parts: string[] = [];
  let range: Span | undefined;

  // Placement of a device, a backend or a CXL window, from the layout.
  const placement = placementAt(a, off);
  if (placement) {
    parts.push(placement.markdown);
    range = placement.span;
  }
  // A size or address value.
  const size = sizeAt(a, off);
  if (size) {
    parts.push(`\`${size.text}\` = **${hexHuman(size.value)}**${size.what ? ` (${size.what})` : ''}`);
    range = size.span;
  }
  // A property name of a -device / -object: its type and default in the QEMU judged for.
  const prop = propertyAt(a, off);
  if (prop) {
    parts.push(prop.markdown);
    range ??= prop.span;
  }
  // Diagnostics here: the rule in one sentence.
  const seen = new Set<string>();
  for (const d of a.doc.diagnostics) {
    if (d.span.start > off || d.span.end < off || seen.has(d.code)) continue;
    seen.add(d.code);
    const rule = RULES_BY_CODE.get(d.code);
    if (!rule) continue;
    parts.push(`**${d.code}**: ${rule.summary}${rule.enforcedBy ? `\n\nQEMU: "${rule.enforcedBy}"` : ''}`);
    if (!range) range = d.span;
  }
  if (!parts.length) return undefined;
  return { markdown: parts.join('\n\n---\n\n'), span: range };
}

/** The size or address value at off: one the model knows (with what it sizes), or any size-like key=VALUE / attr="VALUE". */
export function sizeAt(a: EditorAnalysis, off: number): { text: string; value: bigint; span: Span; what?: string } | undefined {
  const t = a.text;
  const within = (s: Span) => s.start <= off && off <= s.end && s.end > s.start;
  for (const n of a.doc?.nodes ?? []) {
    for (const s of n.sizes) {
      const sp = s.m.span();
      if (!within(sp) || t.slice(sp.start, sp.end) !== s.m.text || !s.parsed.ok) continue;
      return { text: s.m.text, value: s.parsed.value, span: sp, what: s.what };
    }
  }
  let s = off;
  let e = off;
  while (s > 0 && /[A-Za-z0-9.]/.test(t[s - 1])) s--;
  while (e < t.length && /[A-Za-z0-9.]/.test(t[e])) e++;
  if (e <= s) return undefined;
  const tok = t.slice(s, e);
  if (!/^[0-9]/.test(tok)) return undefined;
  const before = t.slice(Math.max(0, s - 40), s);
  const km = /([A-Za-z][\w.-]*)\s*=\s*["']?$/.exec(before) ?? /(-m)\s+$/.exec(before);
  if (!km || !/size|mem|align|start|addr|granularity|base|offset|^-m$/i.test(km[1])) return undefined;
  const r = parseQemuSize(tok);
  if (!r.ok) return undefined;
  return { text: tok, value: r.value, span: { start: s, end: e } };
}

/**
 * Where what is at off lands in the guest, per node (nodes with the same
 * placement share one paragraph): a device's BARs (a CXL host bridge's
 * registers too), a backend through the ivshmem device that maps it (BAR2),
 * a CXL Type 3 device's memory (and its backend) through the windows that
 * target its host bridge, a CXL fixed memory window, a memmap= range (SPM).
 */
export function placementAt(a: EditorAnalysis, off: number): HoverResult | undefined {
  const nodes = a.doc?.nodes ?? [];
  const within = (s: Span) => s.start <= off && off <= s.end;
  const byText = new Map<string, string[]>();
  let span: Span | undefined;
  const consider = (s: Span) => {
    if (!span || s.end - s.start < span.end - span.start) span = s;
  };
  for (const n of nodes.slice(0, 64)) {
    const lines: string[] = [];
    let layout: NodeLayout | undefined;
    const L = () => (layout ??= a.layout(n));
    const shown = new Set<string>();
    const barLines = (dev: NodeModel['devices'][number], label: string, only?: number) => {
      const f = L()?.functions.find((x) => x.source === dev);
      if (!f) return;
      const bars = f.bars.filter((b) => b.start !== undefined && !b.rom && (only === undefined || b.bar === only));
      const head = `**${label}** \`${bdf(f)}\``;
      if (!bars.length && !f.rootBus && only === undefined) lines.push(`${head}: no memory BAR placed`);
      for (const b of bars) {
        const key = `${bdf(f)}/${b.bar}`;
        if (shown.has(key)) continue;
        shown.add(key);
        const end = b.start! + b.size - 1n;
        lines.push(`${head} BAR${b.bar}: start **${hex(b.start!)}**, end ${hex(end)}, size ${hexHuman(b.size)}, ${b.is64 ? '64' : '32'}-bit${b.prefetch ? ' prefetchable' : ''}`);
      }
    };
    // CXL memory: a Type 3 device's capacity is mapped, once the guest creates a region, in a window that targets its host bridge.
    const cxlShown = new Set<NodeModel['devices'][number]>();
    const cxlLines = (dev: NodeModel['devices'][number], label: string) => {
      if (cxlShown.has(dev)) return;
      cxlShown.add(dev);
      const hb = hostBridgeOf(n, dev);
      const kinds = CXL_MEMDEVS.map((k) => ({ k, id: prop(dev.props, k)?.value.text })).filter((x) => x.id);
      const cap = kinds.map((x) => n.backends.get(x.id!)?.size?.parsed).reduce((sum, r) => sum + (r?.ok ? r.value : 0n), 0n);
      const what = kinds.map((x) => (x.k === 'volatile-memdev' ? 'volatile' : 'persistent')).join(' + ');
      const wins = hb ? (L()?.platform.cxl?.windows ?? []).filter((w) => w.size > 0n && w.targets.includes(hb)) : [];
      const head = `**${label}** CXL ${what || 'memory'}${cap ? ` ${human(cap)}` : ''}${hb ? ` behind host bridge ${hb}` : ''}`;
      if (!wins.length) lines.push(`${head}: no CXL window targets ${hb ?? 'its host bridge'}, so the guest cannot map it`);
      for (const w of wins) lines.push(`${head}: mapped in ${windowLine(w)}`);
    };
    for (const d of n.devices) {
      const sp = d.m.span();
      if (!within(sp) || sp.end > a.text.length) continue;
      consider(d.id && within(d.id.span()) ? d.id.span() : sp);
      barLines(d, `${d.id?.text ?? d.driver}`);
      if (d.driver === 'pxb-cxl') {
        const hb = L()?.platform.cxl?.hostBridges.find((h) => h.id === d.id?.text);
        if (hb) lines.push(`**${hb.id}** CXL host bridge registers: ${hex(hb.base)}–${hex(hb.base + 0xffffn)} (64 KiB)`);
      }
      if (d.driver === 'cxl-type3') cxlLines(d, `${d.id?.text ?? d.driver}`);
    }
    // A backend: where the ivshmem device that maps it puts it (BAR2), or the CXL device it is the memory of.
    for (const o of n.objects) {
      const sp = o.m.span();
      if (!within(sp) || !o.id || !o.qomType.startsWith('memory-backend-')) continue;
      const id = o.id.text;
      const users = n.devices.filter((d) => d.driver.startsWith('ivshmem') && d.props.some((p) => p.key === 'memdev' && p.value.text === id));
      const cxl = n.devices.filter((d) => d.driver === 'cxl-type3' && d.props.some((p) => CXL_MEMDEVS.includes(p.key) && p.value.text === id));
      if (!users.length && !cxl.length) continue;
      consider(sp);
      for (const u of users) barLines(u, `${id} → ${u.id?.text ?? u.driver}`, 2);
      for (const u of cxl) cxlLines(u, `${id} → ${u.id?.text ?? u.driver}`);
    }
    for (const w of n.fmws) {
      const spans = [...w.keys.map((k) => k.keySpan), ...w.keys.map((k) => k.value.span())];
      const hit = spans.find(within);
      if (!hit) continue;
      consider(hit);
      const win = L()?.platform.cxl?.windows.find((x) => x.index === w.index);
      if (win && win.size > 0n) lines.push(windowLine(win));
    }
    // memmap= ranges (Specific Purpose Memory is one): where the kernel carves them.
    for (const e of n.memmap) {
      const sp = e.m.span();
      if (!within(sp) || sp.end > a.text.length || e.start === undefined || !e.size) continue;
      consider(sp);
      lines.push(`**memmap** ${memmapKind(e)}: start **${hex(e.start)}**, end ${hex(e.start + e.size - 1n)}, size ${hexHuman(e.size)}`);
    }
    if (lines.length) {
      const key = lines.join('\n\n');
      byText.set(key, [...(byText.get(key) ?? []), n.name]);
    }
  }
  if (!byText.size || !span) return undefined;
  const out: string[] = [];
  for (const [text, names] of byText) {
    const who = nodes.length > 1 ? `Node ${names.length > 4 ? `${names.slice(0, 3).join(', ')} … ${names[names.length - 1]}` : names.join(', ')}: ` : '';
    out.push(`${who}guest physical placement (${profileLabel(a.qemu)}, as \`memfabric layout\` predicts)\n\n${text}`);
  }
  return { markdown: out.join('\n\n'), span };
}

/** The -device / -object property whose name is at off, described from the profile (type, QEMU's default). */
export function propertyAt(a: EditorAnalysis, off: number): HoverResult | undefined {
  const q = a.qemu;
  for (const n of a.doc?.nodes ?? []) {
    const owners: { what: string; props: { key: string; keySpan: Span }[]; info: Record<string, PropInfo> | undefined }[] = [
      ...n.devices.map((d) => ({ what: `-device ${d.driver}`, props: d.props, info: q.devices[d.driver]?.props })),
      ...n.objects.map((o) => ({ what: `-object ${o.qomType}`, props: o.props, info: q.objects[o.qomType]?.props })),
    ];
    for (const o of owners) {
      for (const p of o.props) {
        if (p.keySpan.start > off || p.keySpan.end < off || p.keySpan.end > a.text.length) continue;
        const info = o.info && Object.hasOwn(o.info, p.key) ? o.info[p.key] : undefined;
        if (!info) return undefined;
        const d = info.default;
        const big = (typeof d === 'number' && d > 0xffff) || (typeof d === 'string' && /^\d{6,}$/.test(d));
        const dflt = d === undefined ? '' : `, default \`${big ? `0x${BigInt(d as number | string).toString(16)}` : String(d)}\``;
        return { markdown: `\`${p.key}\` of ${o.what}: ${info.type}${dflt} (${profileLabel(q)})`, span: p.keySpan };
      }
    }
  }
  return undefined;
}
