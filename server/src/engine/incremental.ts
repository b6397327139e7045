/**
 * What lets an analysis reuse the work of the previous one on the same
 * document (engine/index.ts): where two versions of a text differ, and
 * moving the source offsets of kept results to where their text now is.
 *
 * A kept result is only ever used when every offset it holds lies in text
 * that did not change (before the change, or after it, then moved by the
 * change's length difference): `offsetsWithin` checks that once, when the
 * result is computed; `mapDeep` then moves it exactly (offsets before the
 * change stay, offsets after it move by the change's length difference).
 */
import { FileInfo, HostProbe } from './rules/rule';
import { MStr, Shift, Span } from './text/source';

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

/** Old offset → new offset, for offsets in unchanged text (< start stay, > oldEnd move by delta). */
export function offsetShift(c: TextChange): Shift {
  return { start: c.start, delta: c.delta };
}

function isSpan(o: Record<string, unknown>): boolean {
  if (typeof o.start !== 'number' || typeof o.end !== 'number') return false;
  let k = 0;
  for (const _ in o) if (++k > 2) return false;
  return k === 2;
}

/**
 * A copy of x (plain objects, arrays, Maps, MStr, spans) with every source
 * offset o replaced by f(o); shared objects stay shared (memo). Strings,
 * numbers that are not span ends, bigints: as they are.
 */
export function mapDeep<T>(x: T, shift: Shift, memo: Map<object, unknown> = new Map()): T {
  if (x === null || typeof x !== 'object') return x;
  const hit = memo.get(x as object);
  if (hit !== undefined) return hit as T;
  let out: unknown;
  if (x instanceof MStr) out = x.mapOffsets(shift);
  else if (Array.isArray(x)) {
    const a: unknown[] = new Array(x.length);
    memo.set(x, a);
    for (let i = 0; i < x.length; i++) a[i] = mapDeep(x[i], shift, memo);
    return a as T;
  } else if (x instanceof Map) {
    const m = new Map();
    memo.set(x, m);
    for (const [k, v] of x) m.set(k, mapDeep(v, shift, memo));
    return m as T;
  } else {
    const o = x as unknown as Record<string, unknown>;
    if (isSpan(o)) {
      const { start, end } = o as unknown as Span;
      out = { start: start >= shift.start ? start + shift.delta : start, end: end >= shift.start ? end + shift.delta : end };
    } else {
      const c: Record<string, unknown> = {};
      memo.set(x as object, c);
      for (const k in o) c[k] = mapDeep(o[k], shift, memo);
      return c as T;
    }
  }
  memo.set(x as object, out);
  return out as T;
}

/**
 * Does every source offset in x lie in one of the regions (inclusive ends)?
 * False as well for anything mapDeep cannot move (an object of another class).
 */
export function offsetsWithin(x: unknown, regions: Span[], seen: Set<object> = new Set()): boolean {
  let ok = true;
  const inside = (o: number) => {
    if (!ok) return;
    for (const r of regions) if (o >= r.start && o <= r.end) return;
    ok = false;
  };
  const walk = (v: unknown): void => {
    if (!ok || v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (v instanceof MStr) v.forEachOffset(inside);
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
        inside(o.start as number);
        inside(o.end as number);
      } else for (const k in o) walk(o[k]);
    }
  };
  walk(x);
  return ok;
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
    stat(path) {
      const r = host.stat(path);
      facts.set(path, r);
      return r;
    },
  };
}
