/**
 * Source positions. Everything the engine reads keeps where it came from as
 * offsets into the document text; conversion to line/character happens only at
 * the edges (CLI output, LSP).
 */

/** Half-open range of UTF-16 offsets into a document: [start, end). */
export interface Span {
  readonly start: number;
  readonly end: number;
}

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export function span(start: number, end: number): Span {
  return { start, end };
}

export function cover(a: Span, b: Span): Span {
  return { start: Math.min(a.start, b.start), end: Math.max(a.end, b.end) };
}

/** Maps offsets of one text to 0-based line/character positions (LSP convention). */
export class LineMap {
  private readonly lineStarts: number[];
  constructor(readonly text: string) {
    const starts = [0];
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) starts.push(i + 1);
      else if (c === 13) {
        if (text.charCodeAt(i + 1) === 10) i++;
        starts.push(i + 1);
      }
    }
    this.lineStarts = starts;
  }

  position(offset: number): Position {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, character: o - this.lineStarts[lo] };
  }

  offset(pos: Position): number {
    const line = Math.max(0, Math.min(pos.line, this.lineStarts.length - 1));
    const start = this.lineStarts[line];
    const next = line + 1 < this.lineStarts.length ? this.lineStarts[line + 1] : this.text.length;
    return Math.min(start + Math.max(0, pos.character), next);
  }

  range(s: Span): Range {
    return { start: this.position(s.start), end: this.position(s.end) };
  }

  get lineCount(): number {
    return this.lineStarts.length;
  }
}

/**
 * A string whose every character remembers the source span it came from.
 * Text read from a file maps one character to one offset; text that was
 * decoded (XML entities, shell quotes, variable expansion) or generated
 * (topology → QEMU options) maps to whatever produced it, so a diagnostic on
 * any substring lands on the exact source that a user has to edit.
 *
 * Three representations of the same mapping (the cheap ones are the common
 * case; none is observable from outside):
 *   IDENT: character i maps to [s0 + i, s0 + i + 1) (text read as is);
 *   SYN:   every character maps to [s0, e0) (generated text);
 *   ARR:   per-character arrays (anything else, e.g. a concatenation).
 */
const IDENT = 1;
const SYN = 2;
const ARR = 0;

/**
 * A change of coordinates for source offsets (engine/incremental.ts: kept
 * results are stored in coordinates that do not move when text before them
 * changes, and mapped to the text's offsets when read).
 */
export interface OffsetMap {
  /** The offset o becomes; end: o is a span's exclusive end (it goes with the character before it). */
  map(o: number, end: boolean): number;
  /** Are the characters at offsets a..b (inclusive) all moved by the same amount? */
  uniform(a: number, b: number): boolean;
}

/** Maps a span through m (an empty span stays empty; an end goes with the character before it). */
export function mapSpan(s: Span, m: OffsetMap): Span {
  const start = m.map(s.start, false);
  return { start, end: s.end === s.start ? start : m.map(s.end, true) };
}

export class MStr {
  private constructor(
    readonly text: string,
    private readonly mode: number,
    private readonly s0: number,
    private readonly e0: number,
    private readonly starts: Int32Array | undefined,
    private readonly ends: Int32Array | undefined,
    /** Span used for an empty string (where it would have been). */
    private readonly at: Span,
  ) {}

  static source(text: string, offset: number): MStr {
    return new MStr(text, IDENT, offset, 0, undefined, undefined, { start: offset, end: offset + text.length });
  }

  /** Generated text: every character maps to the whole span that caused it. */
  static synthetic(text: string, where: Span): MStr {
    return new MStr(text, SYN, where.start, where.end, undefined, undefined, where);
  }

  static concat(parts: MStr[], whereIfEmpty?: Span): MStr {
    if (parts.length === 1) return parts[0];
    let text = '';
    for (const p of parts) text += p.text;
    const at = parts.length ? { start: parts[0].at.start, end: parts[parts.length - 1].at.end } : whereIfEmpty ?? { start: 0, end: 0 };
    if (text.length === 0) return new MStr(text, IDENT, at.start, 0, undefined, undefined, at);
    // One read run continued by the next (a value split and joined again): stays IDENT.
    let only: MStr | undefined;
    let contiguous = true;
    let next = 0;
    for (const p of parts) {
      if (!p.text.length) continue;
      if (p.mode !== IDENT || (only && p.s0 !== next)) {
        contiguous = false;
        break;
      }
      only ??= p;
      next = p.s0 + p.text.length;
    }
    if (contiguous && only) return new MStr(text, IDENT, only.s0, 0, undefined, undefined, at);
    const s = new Int32Array(text.length);
    const e = new Int32Array(text.length);
    let k = 0;
    for (const p of parts) {
      const n = p.text.length;
      if (p.mode === IDENT) {
        for (let i = 0; i < n; i++) {
          s[k + i] = p.s0 + i;
          e[k + i] = p.s0 + i + 1;
        }
      } else if (p.mode === SYN) {
        s.fill(p.s0, k, k + n);
        e.fill(p.e0, k, k + n);
      } else {
        s.set(p.starts!, k);
        e.set(p.ends!, k);
      }
      k += n;
    }
    return new MStr(text, ARR, 0, 0, s, e, at);
  }

  get length(): number {
    return this.text.length;
  }

  private startAt(i: number): number {
    return this.mode === IDENT ? this.s0 + i : this.mode === SYN ? this.s0 : this.starts![i];
  }

  private endAt(i: number): number {
    return this.mode === IDENT ? this.s0 + i + 1 : this.mode === SYN ? this.e0 : this.ends![i];
  }

  slice(a: number, b: number = this.text.length): MStr {
    const n = this.text.length;
    a = Math.max(0, Math.min(a, n));
    b = Math.max(a, Math.min(b, n));
    if (a === b) {
      const pos = a < n ? this.startAt(a) : a > 0 ? this.endAt(a - 1) : this.at.start;
      return new MStr('', IDENT, pos, 0, undefined, undefined, { start: pos, end: pos });
    }
    if (a === 0 && b === n) return this;
    const at = { start: this.startAt(a), end: this.endAt(b - 1) };
    const text = this.text.slice(a, b);
    if (this.mode === IDENT) return new MStr(text, IDENT, this.s0 + a, 0, undefined, undefined, at);
    if (this.mode === SYN) return new MStr(text, SYN, this.s0, this.e0, undefined, undefined, at);
    return new MStr(text, ARR, 0, 0, this.starts!.subarray(a, b), this.ends!.subarray(a, b), at);
  }

  /** Source span of characters [a, b) (the whole string by default). */
  span(a = 0, b = this.text.length): Span {
    if (a >= b || this.text.length === 0) return this.slice(a, a).at;
    const from = Math.max(0, a);
    const to = Math.min(b, this.text.length);
    if (from >= to) return { start: Infinity, end: -Infinity }; // (out of range: no character)
    if (this.mode === IDENT) return { start: this.s0 + from, end: this.s0 + to };
    if (this.mode === SYN) return { start: this.s0, end: this.e0 };
    let lo = Infinity;
    let hi = -Infinity;
    const st = this.starts!;
    const en = this.ends!;
    for (let i = from; i < to; i++) {
      if (st[i] < lo) lo = st[i];
      if (en[i] > hi) hi = en[i];
    }
    return { start: lo, end: hi };
  }

  /** The same string with every source offset mapped through m (see engine/incremental.ts). */
  mapOffsets(m: OffsetMap): MStr {
    const n = this.text.length;
    const at = mapSpan(this.at, m);
    if (this.mode === IDENT) {
      if (n === 0) return new MStr(this.text, IDENT, at.start, 0, undefined, undefined, at);
      if (m.uniform(this.s0, this.s0 + n - 1)) return new MStr(this.text, IDENT, m.map(this.s0, false), 0, undefined, undefined, at);
    } else if (this.mode === SYN) {
      const s = m.map(this.s0, false);
      return new MStr(this.text, SYN, s, this.e0 === this.s0 ? s : m.map(this.e0, true), undefined, undefined, at);
    }
    const s = new Int32Array(n);
    const e = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const a = this.startAt(i);
      const b = this.endAt(i);
      s[i] = m.map(a, false);
      e[i] = b === a ? s[i] : m.map(b, true);
    }
    return new MStr(this.text, ARR, 0, 0, s, e, at);
  }

  /**
   * Every source offset this string refers to, through fn (end: the offset
   * is an exclusive end), so that a caller knows what text it depends on
   * (engine/incremental.ts).
   */
  forEachOffset(fn: (o: number, end: boolean) => void): void {
    const n = this.text.length;
    if (!n) {
      // Only an empty string's "where" is ever observed.
      fn(this.at.start, false);
      if (this.at.end !== this.at.start) fn(this.at.end, true);
      return;
    }
    if (this.mode === IDENT) {
      fn(this.s0, false);
      fn(this.s0 + n - 1, false);
      fn(this.s0 + n, true);
    } else if (this.mode === SYN) {
      fn(this.s0, false);
      if (this.e0 !== this.s0) fn(this.e0, true);
    } else {
      // (Runs of generated text repeat one span: each distinct offset once is enough.)
      let ls = NaN;
      let le = NaN;
      for (let i = 0; i < n; i++) {
        const s = this.starts![i];
        const e = this.ends![i];
        if (s !== ls) fn((ls = s), false);
        if (e !== le && e !== s) fn((le = e), true);
      }
    }
    fn(this.at.start, false);
    if (this.at.end !== this.at.start) fn(this.at.end, true);
  }

  /** Split on a single character, keeping mapping. */
  split(sep: string): MStr[] {
    const out: MStr[] = [];
    let from = 0;
    for (;;) {
      const i = this.text.indexOf(sep, from);
      if (i < 0) {
        out.push(this.slice(from));
        return out;
      }
      out.push(this.slice(from, i));
      from = i + sep.length;
    }
  }

  trim(): MStr {
    const t = this.text;
    let a = 0;
    let b = t.length;
    while (a < b && isSpace(t.charCodeAt(a))) a++;
    while (b > a && isSpace(t.charCodeAt(b - 1))) b--;
    return this.slice(a, b);
  }

  toString(): string {
    return this.text;
  }
}

const WS = /\s/;
/** Exactly /\s/ (ECMAScript white space and line terminators), fast for ASCII. */
export function isSpace(c: number): boolean {
  if (c < 128) return c === 32 || (c >= 9 && c <= 13);
  return WS.test(String.fromCharCode(c));
}
