/**
 * Nodes of one shape (engine/index.ts analyzeTopology): <node> elements whose
 * text is the same but for the node's own name wherever it occurs (its name,
 * the paths and ids made from it) and the serial numbers of its devices.
 * Generated clusters are made of them: forty nodes of The Machine, each
 * with its own files. One node of a shape is read and checked; the others'
 * readings, models and findings are that node's, with the name and serials
 * put in and every source offset moved to the node's own element.
 *
 * That is right only if nothing the engine does depends on a name or a serial
 * except by carrying it along. analyzeTopology makes sure before it relies on
 * it: a second node of the shape (the first whose name and serials all
 * differ from the first node's: canProve) is read and checked in full as well
 * and compared with what derive() makes of the first (sameData); a shape
 * where the two differ is read node by node. A derived node also needs the same
 * answers from the host for its own paths (substituted HostFacts).
 */
import { ownString, XmlElement, XmlTwins } from './syntax/xml';
import { MStr, mapSpan, OffsetMap, Span } from './text/source';
import { HostFacts, mapDeep, Unmappable, visitOffsets } from './incremental';
import { keepOn, KEEPS, keptOn } from './kept';

/** A place in a node element that differs between the nodes of a shape. */
export interface Hole {
  start: number;
  end: number;
  text: string;
}

export interface Shape {
  /** The element's text with its holes cut out (and which serials are equal): equal keys, one shape. */
  key: string;
  el: Span;
  name: string;
  /** Sorted, not overlapping: every occurrence of the name, and each sn="…" value. */
  holes: Hole[];
  /** The serial numbers' texts, in the order of their holes. */
  serials: string[];
}

/** A name that a derived string can carry unambiguously: a letter, then letters, digits, - or _, with a digit. */
const NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;
const SERIAL = /^(0x[0-9a-fA-F]+|[0-9]+)$/;

/**
 * A name a twin may have (NodeTwins): no '-' first, last or twice, so that
 * put in a comment's text it neither makes '--' nor meets the '-->' that
 * closes it.
 */
const TWIN_NAME = /^[A-Za-z][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*$/;

/** What shapeOf finds in a <node> element before it looks at the rest of the document. */
interface Holes {
  /** Where the element starts (a note is only good there: a moved element has none). */
  at: number;
  name: string;
  holes: Hole[];
  serials: string[];
  /** The element's text with its holes cut out, then which serials are equal. */
  key: string;
}

/** QEMU's number for a serial number's text (read in base 0: 0x hex, a leading 0 octal), or undefined where it reads none. */
function serialValue(t: string): bigint | undefined {
  if (t.startsWith('0x')) return BigInt(t);
  if (t.length > 1 && t.charCodeAt(0) === 48) return /^[0-7]+$/.test(t) ? BigInt(`0o${t}`) : undefined;
  return BigInt(t);
}

/**
 * Whether node b, read in full, can prove that the nodes of node a's shape
 * derive from a (analyzeTopology): b's name and every serial number differ
 * from a's, as texts and as numbers. Derivation replaces a's serial as a token wherever
 * it is, in the engine's own words too: with serial 2, the "below 2^64" of a
 * size's error. A node that has a's serial in a hole shows nothing of that
 * hole's replacement, so it proves nothing about the others (their 6 would
 * make it "below 6^64").
 */
export function canProve(a: { name: string; serials: string[] }, b: { name: string; serials: string[] }): boolean {
  if (a.name === b.name) return false;
  for (let i = 0; i < a.serials.length; i++) {
    const [x, y] = [a.serials[i], b.serials[i]];
    if (x === y) return false;
    const [u, v] = [serialValue(x), serialValue(y)];
    if (u !== undefined && u === v) return false;
  }
  return true;
}

/** Which serials are equal to which: a node whose devices share a serial is not like one whose devices do not. */
function equalSerials(serials: string[]): string {
  return serials.map((s) => serials.indexOf(s)).join(',');
}

/** The name of a <node> element that can be shared, or undefined. */
function sharedName(el: XmlElement, text: string): string | undefined {
  let nameA;
  for (const a of el.attrs) {
    if (a.name === 'count') return undefined;
    if (a.name === 'name') nameA = a;
  }
  if (!nameA) return undefined;
  const name = nameA.value.text;
  if (!NAME.test(name) || !/\d/.test(name) || text.slice(nameA.valueSpan.start, nameA.valueSpan.end) !== name) return undefined;
  return name;
}

function holesOf(el: XmlElement, text: string): Holes | undefined {
  const name = sharedName(el, text);
  if (name === undefined) return undefined;
  const { start, end } = el.span;
  const holes: Hole[] = [];
  // the serial numbers
  const serials: Hole[] = [];
  const walk = (e: XmlElement) => {
    for (const a of e.attrs) {
      if (a.name !== 'sn') continue;
      const raw = text.slice(a.valueSpan.start, a.valueSpan.end);
      if (raw === a.value.text && SERIAL.test(raw)) serials.push({ start: a.valueSpan.start, end: a.valueSpan.end, text: raw });
    }
    for (const c of e.children) if (c.kind === 'element') walk(c);
  };
  walk(el);
  // every occurrence of the name (none may touch a serial), merged in order with the serials (in document order)
  // (looked for in the element's own text: past its end, indexOf would read the rest of the document)
  const own = text.slice(start, end);
  let si = 0;
  for (let j = own.indexOf(name); j >= 0; j = own.indexOf(name, j + name.length)) {
    const i = start + j;
    for (; si < serials.length && serials[si].start < i; si++) {
      if (serials[si].end > i) return undefined;
      holes.push(serials[si]);
    }
    if (si < serials.length && serials[si].start < i + name.length) return undefined;
    holes.push({ start: i, end: i + name.length, text: name });
  }
  for (; si < serials.length; si++) holes.push(serials[si]);
  let key = '';
  let from = start;
  for (const h of holes) {
    key += text.slice(from, h.start) + (h.text === name ? '\u0000' : '\u0001');
    from = h.end;
  }
  key += text.slice(from, end);
  const texts = serials.map((s) => s.text);
  // (a key of its own: made of slices of the text, it would keep the whole text of this version of the
  // document for as long as a derived node keeps its first node's shape)
  return { at: start, name, holes, serials: texts, key: ownString(key + '\u0002' + equalSerials(texts)) };
}

/**
 * The shape of a <node> element, or undefined when it has none that can be
 * shared: no plain name, a count= (its expansions are shared already), a name
 * that the rest of the document (`context`: the text outside node elements,
 * and the document's path) also holds.
 */
export function shapeOf(el: XmlElement, text: string, context: string): Shape | undefined {
  const noted = el.note as Holes | undefined;
  const h = noted && noted.at === el.span.start ? noted : holesOf(el, text);
  if (!h || context.includes(h.name)) return undefined;
  return { key: h.key, el: { start: h.at, end: el.span.end }, name: h.name, holes: h.holes, serials: h.serials };
}

/**
 * The twins of a parse (engine/syntax/xml.ts XmlTwins): a <node> element
 * whose text is a node read before with its name and serial numbers changed
 * (what makes two nodes one shape) reads as that node did, so its content is
 * left unread; its holes are found on the way, and become its note (shapeOf
 * reads them there). Up to four nodes read in full are the models.
 *
 * A twin reads as its model because a hole holds name characters only, and
 * is a name where the model has its name, a number where the model has a
 * serial number: no '<', '&', quote or ':' comes or goes. The model itself
 * has no '&' (a name in a character reference would change it), and the
 * names no '-' that could make or unmake a comment's '--'.
 */
export class NodeTwins implements XmlTwins {
  private readonly models: { holes: Holes; pieces: string[]; pattern: string }[] = [];
  /** Per shape key: its first node, and whether a node that proves it (canProve) has been read. */
  private readonly seen = new Map<string, { first: Holes; proved: boolean }>();
  /** A twin read in full all the same, and its holes: a node of a shape that the analysis reads in full (until one proves it). */
  private proof: Holes | undefined;

  constructor(private readonly text: string) {}

  read(el: XmlElement): void {
    if (this.proof?.at === el.span.start) {
      (el as { note: unknown }).note = this.proof;
      this.proof = undefined;
      return;
    }
    if (el.local !== 'node' || this.models.length >= 4) return;
    const { start, end } = el.span;
    // (in the element's own text: past its end, indexOf would read the rest of the document)
    if (this.text.slice(start, end).includes('&')) return;
    const h = holesOf(el, this.text);
    if (!h || !TWIN_NAME.test(h.name)) return;
    (el as { note: unknown }).note = h;
    const pieces: string[] = [];
    let from = start;
    // (strings of their own: compared whole with a slice of each later node, === is 3-4 times faster than startsWith on one of a larger text)
    for (const x of h.holes) {
      pieces.push(ownString(this.text.slice(from, x.start)));
      from = x.end;
    }
    pieces.push(ownString(this.text.slice(from, end)));
    this.models.push({ holes: h, pieces, pattern: equalSerials(h.serials) });
    if (!this.seen.has(h.key)) this.seen.set(h.key, { first: h, proved: false });
  }

  endOf(el: XmlElement): { end: number; note: Holes } | undefined {
    if (el.local !== 'node' || !this.models.length) return undefined;
    const name = sharedName(el, this.text);
    if (name === undefined || !TWIN_NAME.test(name)) return undefined;
    for (const m of this.models) {
      const found = this.twin(el.span.start, name, m);
      if (!found) continue;
      // A shape's first node, and each node until one proves it, are read and checked in full (engine/index.ts): read now, not twice.
      const s = this.seen.get(found.note.key);
      if (s?.proved) return found;
      if (!s) this.seen.set(found.note.key, { first: found.note, proved: false });
      else s.proved = canProve(s.first, found.note);
      this.proof = found.note;
      return undefined;
    }
    return undefined;
  }

  /** Whether the text at `start` is model m's with `name` for its name; its end and holes. */
  private twin(start: number, name: string, m: { holes: Holes; pieces: string[]; pattern: string }): { end: number; note: Holes } | undefined {
    const text = this.text;
    const model = m.holes;
    const holes: Hole[] = [];
    const serials: string[] = [];
    let at = start;
    for (let k = 0; ; k++) {
      const piece = m.pieces[k];
      if (text.slice(at, at + piece.length) !== piece) return undefined;
      at += piece.length;
      if (k === model.holes.length) break;
      if (model.holes[k].text === model.name) {
        if (!text.startsWith(name, at)) return undefined;
        holes.push({ start: at, end: at + name.length, text: name });
        at += name.length;
      } else {
        let e = at;
        for (let c = text.charCodeAt(e); (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === 120; c = text.charCodeAt(++e));
        const serial = text.slice(at, e);
        if (!SERIAL.test(serial)) return undefined;
        holes.push({ start: at, end: e, text: serial });
        serials.push(serial);
        at = e;
      }
    }
    // the name is nowhere else in the element (shapeOf would make a hole of it; looked for in the element's own text)
    const own = text.slice(start, at);
    let k = 0;
    for (let j = own.indexOf(name); j >= 0; j = own.indexOf(name, j + name.length)) {
      while (k < holes.length && holes[k].text !== name) k++;
      if (k === holes.length || holes[k].start !== start + j) return undefined;
      k++;
    }
    while (k < holes.length && holes[k].text !== name) k++;
    if (k !== holes.length) return undefined;
    const pattern = equalSerials(serials);
    const key = pattern === m.pattern ? model.key : ownString(model.key.slice(0, model.key.lastIndexOf('\u0002') + 1) + pattern);
    return { end: at, note: { at: start, name, holes, serials, key } };
  }
}

/** Offsets of node `a`'s element → node `b`'s (same shape); offsets outside the element stay. */
export function shapeMap(a: Shape, b: Shape): OffsetMap {
  // (no allocation per call: a derived node maps every offset of its first node's data)
  let seg = 0;
  const at = (o: number): number => {
    if (o < a.el.start || o > a.el.end) {
      seg = -1;
      return o;
    }
    let delta = b.el.start - a.el.start;
    for (let i = 0; i < a.holes.length; i++) {
      const h = a.holes[i];
      if (o <= h.start) {
        seg = 2 * i;
        return o + delta;
      }
      const bh = b.holes[i];
      if (o < h.end) {
        seg = 2 * i + 1;
        return bh.start + Math.min(o - h.start, bh.end - bh.start);
      }
      delta = bh.end - h.end;
    }
    seg = 2 * a.holes.length;
    return o + delta;
  };
  return {
    map: (o) => at(o),
    uniform: (x, y) => {
      at(x);
      const p = seg;
      at(y);
      return p === seg && p % 2 === 0 && (p !== -1 || (x < a.el.start) === (y < a.el.start));
    },
  };
}

/** Per first node of a shape, its distinct serial numbers and their pattern as whole tokens (one per shape, not per derived node). */
const SERIALS = Symbol('serial pattern');
function serialPattern(a: Shape): { texts: string[]; pattern: RegExp | undefined; inert: Set<string> } {
  const p = keptOn<{ texts: string[]; pattern: RegExp | undefined; inert: Set<string> }>(a, SERIALS);
  if (p) return p;
  const texts = [...new Set(a.serials)];
  const pattern = texts.length ? new RegExp(`(?<![0-9A-Za-z])(${texts.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})(?![0-9A-Za-z])`, 'g') : undefined;
  return keepOn(a, SERIALS, { texts, pattern, inert: new Set<string>() });
}

/** a's name and serials in s, replaced by b's (serials only as whole tokens). */
function replacer(a: Shape, b: Shape): (s: string) => string {
  const pairs = new Map<string, string>();
  a.serials.forEach((t, i) => pairs.set(t, b.serials[i]));
  const { texts: serialTexts, pattern: serial, inert } = serialPattern(a);
  const same = a.name === b.name && a.serials.every((t, i) => t === b.serials[i]);
  const swap = (t: string) => pairs.get(t)!;
  return (s) => {
    // (a string of node a's with neither its name nor a serial as a token: every node has it as is; the
    // strings derived are node a's, the same for every node of its shape, so each is looked at once)
    if (same || inert.has(s)) return s;
    const named = s.includes(a.name);
    if (!named && !serialTexts.some((t) => hasToken(s, t))) {
      inert.add(s);
      return s;
    }
    // (a name is letters, digits, - and _: no $ pattern in it)
    let r = named ? s.replaceAll(a.name, b.name) : s;
    if (serial)
      for (const t of serialTexts)
        if (hasToken(r, t)) {
          r = r.replace(serial, swap);
          break;
        }
    return r;
  };
}

/** A letter or digit (what may not touch a serial number for it to be one: the lookarounds of serialPattern). */
const isAlnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/**
 * Whether t is in s as a whole token (serialPattern's match), found without
 * the regular expression: "0x10" is in every "0x100000000 (4 GiB)" of a
 * message, never as a token of its own, and a replace with a function per
 * such string was most of the time spent deriving strings.
 */
export function hasToken(s: string, t: string): boolean {
  for (let i = s.indexOf(t); i >= 0; i = s.indexOf(t, i + 1)) if ((i === 0 || !isAlnum(s.charCodeAt(i - 1))) && !isAlnum(s.charCodeAt(i + t.length))) return true;
  return false;
}

/** What cannot be derived (a read run holds part of a hole): read this node itself. */
export class NotShareable extends Error {}

function isSpan(o: Record<string, unknown>): boolean {
  if (typeof o.start !== 'number' || typeof o.end !== 'number') return false;
  let k = 0;
  for (const _ in o) if (++k > 2) return false;
  return k === 2;
}

/**
 * x (what analyzeTopology keeps of node a: its reading, models, findings, in
 * text offsets) as node b has it: a's name and serials replaced by b's in
 * every string, read text from a's holes taken from b's, every offset in a's
 * element moved to b's.
 */
export function derive<T>(x: T, a: Shape, b: Shape): T {
  return deriver(a, b)(x) as T;
}

/**
 * What analyzeTopology keeps of node a ([reading, models, findings]) as node b
 * has it, the models derived field by field when first read (a cluster rule
 * reads a model's backends and devices; hover or `layout` the rest).
 */
export function deriveUnit<T extends [unknown, (object | undefined)[], unknown]>(x: T, a: Shape, b: Shape): T {
  const m = shapeMap(a, b);
  const str = replacer(a, b);
  // The reading and the findings now, with a memo of their own that is dropped after. The
  // models' fields with one memo for all the unit's models (objects shared between fields
  // stay shared), made when a field is first read: a from-scratch analysis reads one field
  // of a derived model, and a memo kept with each of the 40-node cluster's 38 derived
  // nodes was a third of what an analysis keeps (3.6 KB each).
  const go = deriver(a, b, m, str);
  let fields: ((v: unknown) => unknown) | undefined;
  const field = (v: unknown) => (fields ??= deriver(a, b, m, str))(v);
  const fresh = (v: unknown) => deriver(a, b, m, str)(v);
  return [go(x[0]), x[1].map((model) => model && lazily(model, field, fresh)), go(x[2])] as T;
}

/** A model derived by deriveUnit: the model it was derived from, its derivers, and the fields derived so far. */
interface Origin {
  origin: object;
  /** Derives a field of the origin (one memo for every field). */
  go: (v: unknown) => unknown;
  /** Derives a summary of the origin (a memo of its own: a summary holds none of the model's objects). */
  fresh: (v: unknown) => unknown;
  values: Record<string, unknown>;
  /** What is kept on the model under symbols (engine/kept.ts). */
  syms?: Record<symbol, unknown>;
}
/** Where a derived model keeps its Origin (not enumerable: no walk over fields sees it). */
const ORIGIN = Symbol('derived from');
const originOf = (m: object): Origin | undefined => (m as { [ORIGIN]?: Origin })[ORIGIN];
/** Every summaryOf function (the proof compares them too). */
const summaries: ((m: object) => unknown)[] = [];

/**
 * A function of a model alone (what a cluster rule compares across nodes),
 * kept per model. A derived model's is its first node's, derived: no field of
 * the model is derived for it. The value must be data derive() carries
 * (strings, numbers, bigints, spans, MStr, plain objects, arrays, maps), never
 * a model's own objects; sameSummaries checks it on the proof's second node.
 */
export function summaryOf<M extends object, S>(compute: (m: M) => S): (m: M) => S {
  // (kept on the model: engine/kept.ts)
  const KEY = Symbol('summary');
  const f = (m: M): S => {
    const had = keptOn<{ v: S }>(m, KEY);
    if (had) return had.v;
    const d = originOf(m);
    const r = d ? (d.fresh(f(d.origin as M)) as S) : compute(m);
    keepOn(m, KEY, { v: r });
    return r;
  };
  summaries.push(f as (m: object) => unknown);
  return f;
}

/** Whether every summary of node a's models, derived, is node b's (the proof, with sameData on the models). */
export function sameSummaries(as: (object | undefined)[], bs: (object | undefined)[], a: Shape, b: Shape): boolean {
  if (as.length !== bs.length) return false;
  for (let i = 0; i < as.length; i++) {
    const [x, y] = [as[i], bs[i]];
    if (!x || !y) {
      if (x !== y) return false;
      continue;
    }
    for (const f of summaries) if (!sameData(derive(f(x), a, b), f(y))) return false;
  }
  return true;
}

/** Whether o has k of its own (not one of Object.prototype's: an Origin's values are a plain object, not a dictionary made by Object.create(null)). */
const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** What a derived model holds: node a's field, derived and kept when first read, or what was set since. */
function fieldOf(t: Origin, k: string): unknown {
  const v = t.values;
  if (hasOwn(v, k)) return v[k];
  return (v[k] = t.go((t.origin as Record<string, unknown>)[k]));
}

/**
 * The one handler of every derived model: a proxy over its Origin that has
 * the fields of the model it was derived from. A proxy costs one object a
 * model; an object with an accessor per field cost 5–6 µs a model (a
 * defineProperty per field), and a from-scratch analysis of the 40-node
 * cluster made 38 of them to read one field of each.
 */
const DERIVED: ProxyHandler<Origin> = {
  get(t, k) {
    if (k === ORIGIN) return t;
    if (typeof k !== 'string') return k === KEEPS ? (t.syms ??= {}) : t.syms?.[k];
    if (hasOwn(t.values, k) || hasOwn(t.origin, k)) return fieldOf(t, k);
    return (Object.prototype as Record<string, unknown>)[k];
  },
  set(t, k, v) {
    if (typeof k !== 'string') return false;
    t.values[k] = v;
    return true;
  },
  has(t, k) {
    if (typeof k !== 'string') return k === ORIGIN || (t.syms !== undefined && k in t.syms);
    return hasOwn(t.values, k) || k in t.origin;
  },
  ownKeys(t) {
    const keys: string[] = [];
    for (const k in t.origin) keys.push(k);
    for (const k in t.values) if (!hasOwn(t.origin, k)) keys.push(k);
    return keys;
  },
  // (an accessor, as the fields read: asking for a field's descriptor derives nothing)
  getOwnPropertyDescriptor(t, k) {
    if (typeof k !== 'string') return t.syms !== undefined && k in t.syms ? { value: t.syms[k], writable: true, enumerable: false, configurable: true } : undefined;
    if (!(hasOwn(t.values, k) || hasOwn(t.origin, k))) return undefined;
    const { get, set } = accessorOf(k);
    return { get, set, enumerable: true, configurable: true };
  },
  defineProperty(t, k, d) {
    if (!('value' in d)) return false;
    if (typeof k === 'string') t.values[k] = d.value;
    // (a value kept on the model: engine/kept.ts)
    else if (k !== ORIGIN) (t.syms ??= {})[k] = d.value;
    else return false;
    return true;
  },
  deleteProperty(t, k) {
    if (typeof k !== 'string') return false;
    // (a field deleted reads as undefined from then on)
    t.values[k] = undefined;
    return true;
  },
};

function lazily(o: object, go: (v: unknown) => unknown, fresh: (v: unknown) => unknown): object {
  return new Proxy<Origin>({ origin: o, go, fresh, values: {} }, DERIVED);
}

/**
 * A model with every offset mapped through m (engine/index.ts: a kept model,
 * in region offsets, as the text has it now). A derived model stays lazy: its
 * fields are derived and then mapped when first read, and its summaries too,
 * so that moving half of a 2000-node document does not derive every node.
 * Any other model: mapDeep (memo shared with the caller's other models).
 */
export function mapModel<T extends object>(model: T, m: OffsetMap, memo: Map<object, unknown>): T {
  const o = originOf(model);
  if (!o) return mapDeep(model, m, memo);
  // (one memo for all its fields: objects shared between fields stay shared)
  const own = new Map<object, unknown>();
  const out = lazily(
    o.origin,
    (v) => mapDeep(o.go(v), m, own),
    (v) => mapDeep(o.fresh(v), m, new Map()),
  );
  // the fields it has already (derived, or set since): mapped as they are
  const values = originOf(out)!.values;
  for (const k in o.values) values[k] = mapDeep(o.values[k], m, own);
  return out as T;
}

/** Per field name, the one accessor a derived model's field descriptor gives (Object.getOwnPropertyDescriptor: no closure per model). */
const accessors = new Map<string, { get(this: object): unknown; set(this: object, v: unknown): void }>();
function accessorOf(k: string): { get(this: object): unknown; set(this: object, v: unknown): void } {
  let d = accessors.get(k);
  if (d) return d;
  d = {
    get(this: object) {
      return fieldOf(originOf(this)!, k);
    },
    set(this: object, v: unknown) {
      originOf(this)!.values[k] = v;
    },
  };
  accessors.set(k, d);
  return d;
}

/** Every source offset x refers to, once each, as o * 2 + (1 for an exclusive end): what regions a derived node touches (derivedOffsets). */
export function offsetsOf(x: unknown): number[] | undefined {
  const seen = new Set<number>();
  const ok = visitOffsets(x, (o, end) => seen.add(o * 2 + (end ? 1 : 0)));
  return ok ? [...seen] : undefined;
}

/** Node a's offsets (offsetsOf) as node b's. */
export function derivedOffsets(offsets: number[], a: Shape, b: Shape): number[] {
  const m = shapeMap(a, b);
  const out = new Array<number>(offsets.length);
  for (let i = 0; i < offsets.length; i++) {
    const end = (offsets[i] & 1) === 1;
    out[i] = m.map((offsets[i] - (end ? 1 : 0)) / 2, end) * 2 + (end ? 1 : 0);
  }
  return out;
}

function deriver(a: Shape, b: Shape, m = shapeMap(a, b), str = replacer(a, b)): (v: unknown) => unknown {
  const run = (text: string, read: boolean, s0: number, e0: number): MStr[] => {
    if (!read) return [MStr.synthetic(str(text), mapSpan({ start: s0, end: e0 }, m))];
    if (e0 <= a.el.start || s0 >= a.el.end) return [MStr.source(text, s0)];
    // a read run: its stretches between a's holes move, the holes are b's text
    const out: MStr[] = [];
    let at = s0;
    for (let i = 0; i < a.holes.length && at < e0; i++) {
      const h = a.holes[i];
      if (h.end <= at) continue;
      if (h.start >= e0) break;
      if (h.start < at || h.end > e0) throw new NotShareable('a read run holds part of a name or serial');
      if (h.start > at) out.push(MStr.source(text.slice(at - s0, h.start - s0), m.map(at, false)));
      out.push(MStr.source(b.holes[i].text, b.holes[i].start));
      at = h.end;
    }
    if (at < e0) out.push(MStr.source(text.slice(at - s0), m.map(at, false)));
    return out;
  };
  const touchesHole = (sp: Span) => a.holes.some((h) => h.start < sp.end && sp.start < h.end);
  const memo = new Map<object, unknown>();
  const go = (v: unknown): unknown => {
    if (typeof v === 'string') return str(v);
    if (v === null || typeof v !== 'object') return v;
    // (a span is a value, never changed nor compared by identity: mapped where it is met, with no memo)
    if (isSpan(v as Record<string, unknown>)) {
      const proto = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null) return mapSpan(v as Span, m);
    }
    const hit = memo.get(v);
    if (hit !== undefined) return hit;
    let out: unknown;
    if (v instanceof MStr) {
      // (most strings lie in one stretch between holes, or outside the element, and carry no name: moved as they are)
      const sp = v.span();
      out = v.length && str(v.text) === v.text && m.uniform(sp.start, Math.max(sp.start, sp.end - 1)) && !touchesHole(sp) ? v.mapOffsets(m) : v.rewrite(m, run);
    }
    else if (Array.isArray(v)) {
      const arr: unknown[] = new Array(v.length);
      memo.set(v, arr);
      for (let i = 0; i < v.length; i++) arr[i] = go(v[i]);
      return arr;
    } else if (v instanceof Map) {
      const mm = new Map();
      memo.set(v, mm);
      for (const [k, e] of v) mm.set(go(k), go(e));
      return mm;
    } else {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw new Unmappable(`cannot derive a ${proto?.constructor?.name}`);
      const o = v as Record<string, unknown>;
      const c: Record<string, unknown> = proto === null ? Object.create(null) : {};
      memo.set(v, c);
      // (keys are field names: a name in one would make the proof fail, and the node be read itself)
      for (const k in o) c[k] = go(o[k]);
      return c;
    }
    memo.set(v, out);
    return out;
  };
  return go;
}

/** a's host facts with b's paths: what b's analysis would have asked. */
export function deriveFacts(facts: HostFacts, a: Shape, b: Shape): HostFacts {
  const str = replacer(a, b);
  const out: HostFacts = new Map();
  for (const [path, info] of facts) out.set(str(path), info);
  return out;
}

/** Deep equality of kept analysis data (MStr: the same characters from the same places). */
export function sameData(x: unknown, y: unknown): boolean {
  if (x === y) return true;
  if (typeof x !== typeof y || x === null || y === null || typeof x !== 'object') return false;
  if (x instanceof MStr) return y instanceof MStr && x.sameAs(y);
  if (Array.isArray(x)) {
    if (!Array.isArray(y) || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!sameData(x[i], y[i])) return false;
    return true;
  }
  if (x instanceof Map) {
    if (!(y instanceof Map) || x.size !== y.size) return false;
    for (const [k, v] of x) if (!y.has(k) || !sameData(v, y.get(k))) return false;
    return true;
  }
  if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) return false;
  const a = x as Record<string, unknown>;
  const b = y as Record<string, unknown>;
  // (fields set to undefined count as absent)
  let n = 0;
  for (const k in a) {
    if (a[k] === undefined) continue;
    if (!sameData(a[k], b[k])) return false;
    n++;
  }
  for (const k in b) if (b[k] !== undefined) n--;
  return n === 0;
}
