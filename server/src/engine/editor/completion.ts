/**
 * Completion. The context (which element, attribute, option or property the
 * cursor is in) comes from the current text by a local scan (context.ts);
 * ids and the machine come from the last analysis, which may be of an older
 * version of the text: completion never waits for a fresh analysis of the
 * whole document. Items are engine values: the span of the current text they
 * replace and the text that replaces it.
 */
import { SCHEMA } from '../topology/schema';
import { DEFAULT_PROFILE, PropInfo, QemuProfile } from '../qemu/profile';
import { OPTIONS_WITH_ARG, OPTIONS_WITHOUT_ARG } from '../syntax/qemu-args';
import { hexHuman, parseQemuSize } from '../text/sizes';
import { Span } from '../text/source';
import { IdKind, REF_KEYS } from '../symbols';
import { CompletionData, ServedKind } from './analysis';
import { enclosingNear, previousQemuArg, qemuWordContext, xmlContext, XmlContext } from './context';
import { libvirtChildren, libvirtElement } from './libvirt-schema';

/** What an item is (the server maps it to the editor's icon). */
export type CompletionKind = 'element' | 'attribute' | 'property' | 'value' | 'enum' | 'reference' | 'constant' | 'option' | 'type';

export interface Completion {
  label: string;
  kind: CompletionKind;
  detail?: string;
  documentation?: string;
  sortText?: string;
  filterText?: string;
  /** Span of the current text the item replaces. */
  span: Span;
  newText: string;
  /** newText is a snippet ($1 is where the cursor goes). */
  snippet?: boolean;
  /** Ask for completion again after inserting (a value follows). */
  retrigger?: boolean;
}

/**
 * Completions at offset off of text (the document as it is now). a is what
 * the last prepared analysis of the document left for completion, possibly
 * of an older text: ids by name, never offsets.
 */
export function complete(text: string, off: number, kind: ServedKind, a: CompletionData | undefined, qemu: QemuProfile = a?.qemu ?? DEFAULT_PROFILE): Completion[] {
  const ids: IdsFn = (kinds, ns = 'id') => a?.ids(kinds, ns) ?? [];
  const env: Env = { text, off, a, ids, qemu };
  if (kind === 'topology') {
    const ctx = xmlContext(text, off, a?.skipper(text));
    // Text completes only in <qemu>, which holds no elements: its start tag is near (no scan to the top of a large <cluster>).
    if (ctx.kind === 'text') return enclosingNear(text, off, QEMU_TEXT_TAGS) === 'qemu' ? qemuCompletions(env, ctx.textStart ?? 0) : [];
    return topologyCompletions(env, ctx);
  }
  if (kind === 'libvirt') {
    const ctx = xmlContext(text, off);
    if (ctx.kind === 'value' && /(^|:)arg$/.test(ctx.element ?? '') && ctx.attr === 'value') {
      // The previous <qemu:arg value=…> is the option this value belongs to.
      const prev = previousQemuArg(text, ctx.tagStart);
      return qemuValueCompletions(env, ctx.valueStart!, text.slice(ctx.valueStart!, off), prev);
    }
    return libvirtCompletions(env, ctx);
  }
  return qemuCompletions(env, 0);
}

/** How many tags back a <qemu> start tag is looked for from text (a <qemu> holds text only; a few stray tags are tolerated). */
const QEMU_TEXT_TAGS = 64;

type IdsFn = (kinds?: IdKind[], ns?: 'id' | 'template') => { name: string; kind: IdKind }[];

interface Env {
  text: string;
  off: number;
  a: CompletionData | undefined;
  ids: IdsFn;
  /** The QEMU whose types and properties are offered. */
  qemu: QemuProfile;
}

const POW2 = ['64M', '128M', '256M', '512M', '1G', '2G', '4G', '8G', '16G', '32G', '64G'];
const CXL_SIZES = ['256M', '512M', '768M', '1G', '2G', '4G', '8G', '16G', '32G', '64G', '128G'];
const GRANULARITY = ['256', '512', '1K', '2K', '4K', '8K', '16K'];
const RAM = ['512M', '1G', '2G', '4G', '8G', '16G', '32G', '64G'];

function sizeItems(values: string[], why: string, span: Span): Completion[] {
  return values.map((v, i) => {
    const r = parseQemuSize(v);
    return { label: v, kind: 'value', detail: r.ok ? hexHuman(r.value) : undefined, documentation: why, sortText: String(i).padStart(3, '0'), span, newText: v };
  });
}

function idItems(ids: { name: string; kind: IdKind }[], span: Span, extra: string[] = []): Completion[] {
  const out: Completion[] = ids.map((x) => ({ label: x.name, kind: 'reference', detail: x.kind, span, newText: x.name }));
  for (const e of extra) if (!ids.some((x) => x.name === e)) out.push({ label: e, kind: 'constant', span, newText: e });
  return out;
}

const enumItems = (values: string[], span: Span): Completion[] => values.map((v) => ({ label: v, kind: 'enum', span, newText: v }));

/** zod internals, read without importing zod: the enum values of an attribute, if it is one. */
function enumValues(t: unknown): string[] | undefined {
  let x = t as { _def?: { typeName?: string; innerType?: unknown; values?: string[] } } | undefined;
  for (let i = 0; i < 5 && x?._def; i++) {
    if (x._def.typeName === 'ZodEnum') return x._def.values;
    if (x._def.innerType) x = x._def.innerType as typeof x;
    else break;
  }
  return undefined;
}

/** Sizes the rules accept for a topology attribute. */
export function topologySizeChoice(element: string | undefined, attrName: string): { values: string[]; why: string } | undefined {
  if (attrName === 'granularity') return { values: GRANULARITY, why: 'CXL interleave granularity: a power of two from 256 B to 16 KiB (cxl-fmw-granularity)' };
  if (attrName === 'align') return { values: ['2M', '1G'], why: 'A device-DAX backend needs the DAX device alignment (dax-align)' };
  if (element === 'fabric') return { values: POW2, why: 'ivshmem maps the region as BAR2: its size must be a power of two (ivshmem-size-pow2)' };
  if ((element === 'type3' || element === 'window') && attrName === 'size') return { values: CXL_SIZES, why: 'CXL capacities and windows are multiples of 256 MiB (cxl-type3-size-256m, cxl-fmw-size-256m)' };
  if (attrName === 'lsa-size') return { values: ['256M', '512M'], why: 'Label storage area size' };
  if (attrName === 'memory' || attrName === 'maxmem' || (element === 'cell' && attrName === 'size')) return { values: RAM, why: 'Guest RAM' };
  if (attrName === 'size') return { values: POW2, why: 'A power of two fits every memory device (ivshmem BAR2, CXL at 256 MiB and up)' };
  return undefined;
}

/**
 * Topology attributes (and attribute values) that need a device property of
 * the QEMU the document is judged for: completion offers them only when that
 * QEMU has it (QEMU 7.2's cxl-type3 has neither volatile nor dynamic capacity).
 */
const NEEDS_PROP: Record<string, Record<string, [driver: string, prop: string]>> = {
  type3: { kind: ['cxl-type3', 'volatile-memdev'], 'dc-size': ['cxl-type3', 'volatile-dc-memdev'], 'dc-regions': ['cxl-type3', 'num-dc-regions'], 'dc-path': ['cxl-type3', 'volatile-dc-memdev'] },
};
const NEEDS_PROP_VALUE: Record<string, [driver: string, prop: string]> = {
  'type3 kind volatile': ['cxl-type3', 'volatile-memdev'],
  'window region ram': ['cxl-type3', 'volatile-memdev'],
};
const qemuHas = (qemu: QemuProfile, need: [string, string] | undefined) => !need || !!qemu.devices[need[0]]?.props?.[need[1]];

function topologyCompletions(env: Env, ctx: XmlContext): Completion[] {
  const { text, off, ids } = env;
  const span = { start: ctx.valueStart ?? off, end: off };
  if (ctx.kind === 'element') {
    const names = ctx.parent ? SCHEMA[ctx.parent]?.children ?? [] : ['cluster'];
    return names.map((n, i) => ({ label: n, kind: 'element', documentation: SCHEMA[n]?.doc, sortText: String(i).padStart(3, '0'), span, newText: n }));
  }
  const spec = ctx.element ? SCHEMA[ctx.element] : undefined;
  if (ctx.kind === 'attr') {
    if (!spec) return [];
    return Object.keys(spec.attrs.shape)
      .filter((k) => k !== 'xmlns' && !ctx.present?.includes(k) && qemuHas(env.qemu, NEEDS_PROP[ctx.element!]?.[k]))
      .map((k) => ({ label: k, kind: 'attribute', detail: `<${ctx.element} ${k}>`, documentation: spec.attrs.shape[k].description, snippet: true, span, newText: `${k}="$1"`, retrigger: true }));
  }
  if (ctx.kind === 'value' && spec && ctx.attr) {
    const en = enumValues(spec.attrs.shape[ctx.attr]);
    if (en) return enumItems(en.filter((v) => qemuHas(env.qemu, NEEDS_PROP_VALUE[`${ctx.element} ${ctx.attr} ${v}`])), span);
    if (ctx.element === 'attach' && ctx.attr === 'fabric') return idItems(ids(['fabric']), span);
    if (ctx.element === 'node' && ctx.attr === 'template') return idItems(ids(['template'], 'template'), span);
    if (ctx.element === 'window' && ctx.attr === 'targets') {
      // A space-separated list: replace the word at the cursor.
      let s = off;
      while (s > (ctx.valueStart ?? off) && !/\s/.test(text[s - 1])) s--;
      return idItems(ids(['host-bridge']), { start: s, end: off });
    }
    if (ctx.element === 'egm' && ctx.attr === 'pci-dev') return idItems(ids(['hostdev', 'device']), span);
    if (ctx.attr === 'machine') return enumItems(['q35', 'pc'], span);
    const sz = topologySizeChoice(ctx.element, ctx.attr);
    if (sz) return sizeItems(sz.values, sz.why, span);
  }
  return [];
}

function libvirtCompletions(env: Env, ctx: XmlContext): Completion[] {
  const span = { start: ctx.valueStart ?? env.off, end: env.off };
  if (ctx.kind === 'element') {
    const names = ctx.parent ? libvirtChildren(ctx.parent) : ['domain'];
    return names.map((n, i) => ({ label: n, kind: 'element', documentation: libvirtElement(n)?.doc, sortText: String(i).padStart(3, '0'), span, newText: n }));
  }
  const spec = ctx.element ? libvirtElement(ctx.element, ctx.parent) : undefined;
  if (!spec) return [];
  if (ctx.kind === 'attr') {
    return Object.keys(spec.attrs)
      .filter((k) => !ctx.present?.includes(k))
      .map((k) => ({ label: k, kind: 'attribute', detail: `<${ctx.element} ${k}>`, documentation: spec.attrs[k].doc, snippet: true, span, newText: `${k}='$1'`, retrigger: true }));
  }
  if (ctx.kind === 'value' && ctx.attr) {
    const values = spec.attrs[ctx.attr]?.values;
    if (values) return enumItems(values, span);
  }
  return [];
}

const COMMON_OPTIONS = ['object', 'device', 'machine', 'm', 'smp', 'numa', 'cpu', 'global', 'name', 'kernel', 'initrd', 'append', 'enable-kvm', 'nographic', 'chardev', 'accel', 'drive', 'netdev', 'M'];
let allOptions: string[] | undefined;

function optionItems(span: Span, dashes: string): Completion[] {
  allOptions ??= [...new Set([...COMMON_OPTIONS, ...OPTIONS_WITH_ARG, ...OPTIONS_WITHOUT_ARG])];
  return allOptions.map((o) => {
    const rank = COMMON_OPTIONS.indexOf(o);
    return {
      label: `-${o}`,
      kind: 'option',
      detail: OPTIONS_WITH_ARG.has(o) ? 'takes a value' : undefined,
      sortText: `${rank < 0 ? 1 : 0}${String(rank < 0 ? 0 : rank).padStart(3, '0')}${o}`,
      filterText: `${dashes}${o}`,
      span,
      newText: `${dashes}${o}`,
    };
  });
}

/** Properties of a -device driver / -object type / -machine / -numa / -m, with their QEMU types. */
export function propsOf(option: string, first: string, qemu: QemuProfile = DEFAULT_PROFILE): Record<string, string> {
  const types = (ps: Record<string, PropInfo> | undefined) => Object.fromEntries(Object.entries(ps ?? {}).map(([k, v]) => [k, v.type]));
  switch (option) {
    case 'device':
      return { id: 'str', bus: 'str', ...types(qemu.devices[first]?.props) };
    case 'object':
      return { id: 'str', ...types(qemu.objects[first]?.props) };
    case 'machine':
    case 'M':
      return { ...types(qemu.machineProps.q35), 'cxl-fmw.0.targets.0': 'str', 'cxl-fmw.0.size': 'size', 'cxl-fmw.0.interleave-granularity': 'size' };
    case 'numa':
      return first === 'node' ? { nodeid: 'uint16', cpus: 'str', memdev: 'link<memory-backend>', mem: 'size', initiator: 'uint16' } : {};
    case 'm':
      return { size: 'size', maxmem: 'size', slots: 'uint64' };
    case 'smp':
      return { cpus: 'int', sockets: 'int', cores: 'int', threads: 'int', maxcpus: 'int' };
    default:
      return {};
  }
}

/** In a command line, a launch script or a <qemu> element's text (from regionStart). */
function qemuCompletions(env: Env, regionStart: number): Completion[] {
  const w = qemuWordContext(env.text, env.off, regionStart);
  return qemuValueCompletions(env, w.start, w.word, w.previous);
}

/** The word cur (starting at curStart, ending at the cursor) after the word prev. */
function qemuValueCompletions(env: Env, curStart: number, cur: string, prev: string | undefined): Completion[] {
  const { off, a, ids } = env;
  const prevOpt = prev && /^--?[\w-]+$/.test(prev) ? prev.replace(/^--?/, '') : undefined;
  const option = prevOpt && OPTIONS_WITH_ARG.has(prevOpt) ? prevOpt : undefined;
  if (!option || cur.startsWith('-')) {
    if (cur === '' || cur.startsWith('-')) return optionItems({ start: curStart, end: off }, cur.startsWith('--') ? '--' : '-');
    return [];
  }
  // "-M cxl-fmw.0.size=…": a first element with "=" is a key, not the type.
  const comma = cur.indexOf(',') < 0 && cur.includes('=') ? -1 : cur.lastIndexOf(',');
  if (comma < 0 && !cur.includes('=')) {
    const span = { start: curStart, end: off };
    const names = (xs: string[], kind: CompletionKind, detail?: (x: string) => string | undefined): Completion[] => xs.map((x) => ({ label: x, kind, detail: detail?.(x), span, newText: x }));
    switch (option) {
      case 'device':
        return names(Object.keys(env.qemu.devices).sort(), 'type', (x) => (env.qemu.devices[x].bus ? `${env.qemu.devices[x].bus} device` : 'device'));
      case 'object':
        return names(Object.keys(env.qemu.objects).sort(), 'type', () => 'object type');
      case 'machine':
      case 'M':
        return names(Object.keys(env.qemu.machines), 'enum', (x) => env.qemu.machines[x].desc);
      case 'numa':
        return names(['node', 'dist', 'cpu', 'hmat-lb', 'hmat-cache'], 'enum');
      case 'm':
        return sizeItems(RAM, 'Guest RAM', span);
      default:
        return [];
    }
  }
  const first = comma < 0 ? '' : cur.slice(0, cur.indexOf(',')).replace(/^(driver|qom-type|type)=/, '');
  const seg = cur.slice(comma + 1);
  const segStart = curStart + comma + 1;
  const props = propsOf(option, option === 'm' || option === 'smp' ? '' : first, env.qemu);
  const eq = seg.indexOf('=');
  if (eq < 0) {
    const span = { start: segStart, end: off };
    const present = new Set(cur.split(',').map((x) => x.split('=')[0]));
    return Object.entries(props)
      .filter(([k]) => !present.has(k) || k === seg)
      .map(([k, type]) => ({
        label: k,
        kind: 'property',
        detail: type,
        sortText: `${['id', 'memdev', 'size', 'mem-path', 'share', 'bus', 'persistent-memdev', 'lsa'].includes(k) ? 0 : 1}${k}`,
        span,
        newText: `${k}=`,
        retrigger: true,
      }));
  }
  const key = seg.slice(0, eq);
  const span = { start: segStart + eq + 1, end: off };
  const type = props[key] ?? '';
  if (REF_KEYS[key] || type.startsWith('link<memory-backend')) {
    const kinds = REF_KEYS[key] ?? ['backend'];
    return idItems(ids(kinds), span, key === 'bus' ? [a?.rootBus ?? 'pcie.0'] : []);
  }
  if (/^cxl-fmw\.\d+\.targets\.\d+$/.test(key)) return idItems(ids(['host-bridge']), span);
  if (/^cxl-fmw\.\d+\.size$/.test(key)) return sizeItems(CXL_SIZES, 'A CXL fixed memory window is a multiple of 256 MiB (cxl-fmw-size-256m)', span);
  if (/interleave-granularity$/.test(key)) return sizeItems(GRANULARITY, 'A power of two from 256 B to 16 KiB (cxl-fmw-granularity)', span);
  if (key === 'align') return sizeItems(['2M', '1G'], 'device-DAX alignment (dax-align)', span);
  if (key === 'size' && option === 'object' && first.startsWith('memory-backend-')) {
    // What the backend is for decides which sizes the rules accept.
    const id = /(?:^|,)id=([^,]*)/.exec(cur)?.[1];
    const users = id && a ? a.backendUsers(id) : [];
    if (users.includes('cxl-type3')) return sizeItems(CXL_SIZES, 'A CXL Type 3 capacity is a multiple of 256 MiB (cxl-type3-size-256m)', span);
    return sizeItems(POW2, 'A power of two: ivshmem maps it as BAR2, which must be one (ivshmem-size-pow2); for CXL, 256M and up', span);
  }
  if (key === 'size' || key === 'maxmem' || key === 'mem') return sizeItems(RAM, 'Guest RAM', span);
  if (type === 'bool' || type === 'OnOffAuto' || type === 'OnOffSplit') return enumItems(type === 'OnOffAuto' ? ['on', 'off', 'auto'] : ['on', 'off'], span);
  return [];
}
