/**
 * What lets an analysis reuse the work of the previous one on the same
 * document (engine/index.ts): where two versions of a text differ, which
 * stretches of text stayed the same, and coordinates in which kept results
 * never have to move.
 *
 * A document's text is cut into regions: each element under the root and
 * the text between them. A region keeps its identity from one version to
 * the next while its text is unchanged, wherever that text moves. Kept
 * results hold *region offsets*: offset i of a region is r.v + i, where r.v
 * is fixed when the region first appears (`Regions`). So when typing moves
 * every node after the edited one, nothing kept is copied or rewritten: only
 * the regions' text positions change, and results are mapped to text
 * offsets where they leave the engine (diagnostics on every analysis, node
 * models when asked for). In the first analysis of a document every region
 * offset is its text offset.
 */
import { FileInfo, HostProbe } from './rules/rule';
import { MStr, mapSpan, OffsetMap, Span } from './text/source';

/** [start, oldEnd) of the old text became [start, newEnd) of the new one; the rest is the same. */
export interface TextChange {
  start: number;
  oldEnd: number;
  newEnd: number;
  delta: number;
}

/** The smallest such change (longest common prefix, then longest common suffix of the rest). */
export function diffTexts(a: string, b: string): TextChange {
  const n = Math.min(a.length, b.length);
  let p = 0;
  // Large blocks first (cheap on long equal runs), then smaller ones, then characters.
  for (const B of [65536, 4096, 256]) while (p + B <= n && a.slice(p, p + B) === b.slice(p, p + B)) p += B;
  while (p < n && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  let s = 0;
  const max = n - p;
  const al = a.length;
  const bl = b.length;
  for (const B of [65536, 4096, 256]) while (s + B <= max && a.slice(al - s - B, al - s) === b.slice(bl - s - B, bl - s)) s += B;
  while (s < max && a.charCodeAt(al - 1 - s) === b.charCodeAt(bl - 1 - s)) s++;
  return { start: p, oldEnd: al - s, newEnd: bl - s, delta: bl - al };
}

/**
 * Where the region [start, end] (inclusive: offsets at both ends included) of
 * the new text was in the old one, when all of it is unchanged text; else undefined.
 */
export function oldRegion(c: TextChange, r: Span): Span | undefined {
  if (r.end < c.start) return r;
  if (r.start > c.newEnd) return { start: r.start - c.delta, end: r.end - c.delta };
  return undefined;
}

function isSpan(o: Record<string, unknown>): boolean {
  if (typeof o.start !== 'number' || typeof o.end !== 'number') return false;
  let k = 0;
  for (const _ in o) if (++k > 2) return false;
  return k === 2;
}

/** What mapDeep throws on an object it cannot copy (of a class other than those below). */
export class Unmappable extends Error {}

/**
 * A copy of x (plain objects, arrays, Maps, MStr, spans) with every source
 * offset mapped through m; shared objects stay shared (memo). Strings,
 * numbers that are not span ends, bigints: as they are. Any other object:
 * Unmappable.
 */
export function mapDeep<T>(x: T, m: OffsetMap, memo: Map<object, unknown> = new Map()): T {
  if (x === null || typeof x !== 'object') return x;
  const hit = memo.get(x as object);
  if (hit !== undefined) return hit as T;
  let out: unknown;
  if (x instanceof MStr) out = x.mapOffsets(m);
  else if (Array.isArray(x)) {
    const a: unknown[] = new Array(x.length);
    memo.set(x, a);
    for (let i = 0; i < x.length; i++) a[i] = mapDeep(x[i], m, memo);
    return a as T;
  } else if (x instanceof Map) {
    const r = new Map();
    memo.set(x, r);
    for (const [k, v] of x) r.set(k, mapDeep(v, m, memo));
    return r as T;
  } else {
    const proto = Object.getPrototypeOf(x);
    if (proto !== Object.prototype && proto !== null) throw new Unmappable(`a ${proto?.constructor?.name ?? 'value'} in an analysis result`);
    const o = x as unknown as Record<string, unknown>;
    if (isSpan(o)) return mapSpan(o as unknown as Span, m) as T; // (a value: no need to keep sharing it)
    else {
      const c: Record<string, unknown> = {};
      memo.set(x as object, c);
      for (const k in o) c[k] = mapDeep(o[k], m, memo);
      return c as T;
    }
  }
  memo.set(x as object, out);
  return out as T;
}

/**
 * Every source offset in x, through fn (end: an exclusive end). False when x
 * holds something mapDeep cannot map (an object of another class).
 */
export function visitOffsets(x: unknown, fn: (o: number, end: boolean) => void, seen: Set<object> = new Set()): boolean {
  let ok = true;
  const walk = (v: unknown): void => {
    if (!ok || v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (v instanceof MStr) v.forEachOffset(fn);
    else if (Array.isArray(v)) for (const e of v) walk(e);
    else if (v instanceof Map) for (const e of v.values()) walk(e);
    else {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        ok = false;
        return;
      }
      const o = v as Record<string, unknown>;
      if (isSpan(o)) {
        const { start, end } = o as unknown as Span;
        fn(start, false);
        if (end !== start) fn(end, true);
      } else for (const k in o) walk(o[k]);
    }
  };
  walk(x);
  return ok;
}

// ------------------------------------------------------------------ regions

/** A stretch of text that has not changed since it first appeared; its offsets are v .. v + len. */
export interface Region {
  readonly v: number;
  readonly len: number;
}

interface Segment {
  r: Region;
  /** Where the region's text starts in this version. */
  start: number;
  /** An element under the root (else the text between two). */
  element: boolean;
}

/** Region offsets must fit an Int32Array (MStr); past this, an analysis starts afresh. */
const REGION_LIMIT = 2 ** 31 - 1;

/**
 * The regions of one version of a text: where each one is now, and the maps
 * between text offsets and region offsets.
 */
export class Regions {
  private constructor(
    /** In text order, covering the whole text. */
    private readonly segs: Segment[],
    /** The same, by v. */
    private readonly byV: Segment[],
    private readonly seg: Map<Region, Segment>,
    private readonly byStart: Map<number, Segment>,
    /** The next v free for a new region. */
    readonly nextV: number,
  ) {}

  /**
   * The regions of text whose root element has these children (their spans,
   * in order): those whose text did not change since prev (change: how the
   * text changed) keep their identity; the others are new.
   */
  static build(textLength: number, children: Span[], prev?: Regions, change?: TextChange): Regions | undefined {
    const pieces: { start: number; end: number; element: boolean }[] = [];
    let pos = 0;
    for (const c of children) {
      if (c.start < pos || c.end < c.start) return undefined; // (not a sequence of elements: no regions)
      if (c.start > pos) pieces.push({ start: pos, end: c.start, element: false });
      pieces.push({ start: c.start, end: c.end, element: true });
      pos = c.end;
    }
    if (pos < textLength || pieces.length === 0) pieces.push({ start: pos, end: Math.max(pos, textLength), element: false });
    const base = prev?.nextV ?? 0;
    if (base + textLength + pieces.length + 1 >= REGION_LIMIT) return Regions.build(textLength, children);
    const segs: Segment[] = [];
    const fresh: Segment[] = [];
    let shift: number | undefined;
    let nextV = base;
    for (const p of pieces) {
      const len = p.end - p.start;
      let r: Region | undefined;
      const o = prev && change ? oldRegion(change, p) : undefined;
      if (o) {
        const old = prev!.byStart.get(o.start);
        if (old && old.r.len === len && old.element === p.element) r = old.r;
      }
      let s: Segment;
      if (r) s = { r, start: p.start, element: p.element };
      else {
        // New regions of one version are laid out as their text is (one shift), past every earlier one.
        shift ??= base - p.start;
        r = { v: p.start + shift, len };
        nextV = r.v + len + 1;
        s = { r, start: p.start, element: p.element };
        fresh.push(s);
      }
      segs.push(s);
    }
    const seg = new Map<Region, Segment>();
    const byStart = new Map<number, Segment>();
    for (const s of segs) {
      seg.set(s.r, s);
      byStart.set(s.start, s);
    }
    const byV: Segment[] = [];
    if (prev) for (const s of prev.byV) if (seg.has(s.r)) byV.push(seg.get(s.r)!);
    for (const s of fresh) byV.push(s);
    return new Regions(segs, byV, seg, byStart, Math.max(nextV, base));
  }

  /** The region of the element whose span starts at this text offset. */
  ofElement(start: number): Region | undefined {
    const s = this.byStart.get(start);
    return s?.element ? s.r : undefined;
  }

  /** Is the region still there (its text unchanged)? */
  has(r: Region): boolean {
    return this.seg.has(r);
  }

  /** Does the region's offset differ from its text offset now? */
  moved(r: Region): boolean {
    const s = this.seg.get(r);
    return !s || s.start !== r.v;
  }

  /** Where the region starts in the text now (undefined: gone). */
  startOf(r: Region): number | undefined {
    return this.seg.get(r)?.start;
  }

  /** The segment holding the character at text offset o (the last one starting at or before it). */
  private atText(o: number): Segment {
    const a = this.segs;
    let lo = 0;
    let hi = a.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (a[mid].start <= o) lo = mid;
      else hi = mid - 1;
    }
    return a[lo];
  }

  /** The segment whose region holds region offset o. */
  private atV(o: number): Segment | undefined {
    const a = this.byV;
    let lo = 0;
    let hi = a.length - 1;
    if (hi < 0 || a[0].r.v > o) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (a[mid].r.v <= o) lo = mid;
      else hi = mid - 1;
    }
    const s = a[lo];
    return o <= s.r.v + s.r.len ? s : undefined;
  }

  /** Text offsets → region offsets, adding every region used to touched. */
  toRegion(touched: Set<Region>): OffsetMap {
    // (Offsets come in runs from one element: the last segment first.)
    let last: Segment | undefined;
    const at = (o: number): Segment => {
      const l = last;
      if (l && o >= l.start && o < l.start + l.r.len) return l;
      const s = this.atText(o);
      if (s !== l) touched.add(s.r);
      return (last = s);
    };
    return {
      map: (o, end) => {
        const s = at(end && o > 0 ? o - 1 : o);
        return s.r.v + (o - s.start);
      },
      uniform: (a, b) => at(a) === at(b),
    };
  }

  /** The regions the text offsets in x lie in (undefined when x holds what cannot be mapped). */
  /** The regions of these text offsets (o * 2 + 1 for an exclusive end), as touchedBy counts them. */
  touchedAt(offsets: number[]): Set<Region> {
    const touched = new Set<Region>();
    for (const x of offsets) {
      const end = (x & 1) === 1;
      const o = (x - (end ? 1 : 0)) / 2;
      touched.add(this.atText(end && o > 0 ? o - 1 : o).r);
    }
    return touched;
  }

  touchedBy(x: unknown): Set<Region> | undefined {
    const touched = new Set<Region>();
    const ok = visitOffsets(x, (o, end) => touched.add(this.atText(end && o > 0 ? o - 1 : o).r));
    return ok ? touched : undefined;
  }

  /** Region offset → text offset in this version. */
  toText(o: number): number {
    const s = this.atV(o);
    return s ? s.start + (o - s.r.v) : o;
  }

  /** Region offsets → text offsets, as an OffsetMap. */
  get textMap(): OffsetMap {
    return {
      map: (o) => this.toText(o),
      uniform: (a, b) => this.atV(a) === this.atV(b),
    };
  }
}

/** What a computation asked the host, and what it answered. */
export type HostFacts = Map<string, FileInfo | undefined>;

export function sameFileInfo(a: FileInfo | undefined, b: FileInfo | undefined): boolean {
  if (!a || !b) return a === b;
  return a.size === b.size && a.isFile === b.isFile && a.isDirectory === b.isDirectory && a.isCharDevice === b.isCharDevice;
}

/** Are the recorded answers still the host's answers? */
export function factsHold(facts: HostFacts, host: HostProbe): boolean {
  for (const [path, info] of facts) if (!sameFileInfo(host.stat(path), info)) return false;
  return true;
}

/** host, recording every answer into facts. */
export function recordingHost(host: HostProbe, facts: HostFacts): HostProbe {
  return {
    real: host.real,
    stat(path) {
      const r = host.stat(path);
      facts.set(path, r);
      return r;
    },
  };
}
