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
 *   RUNS:  a sequence of such runs (anything else, e.g. a concatenation of
 *          read and generated text): RUN_W numbers per run in one Int32Array,
 *          the index of its first character, its kind (IDENT or SYN), s0, e0.
 */
const IDENT = 1;
const SYN = 2;
const RUNS = 0;
/** Numbers per run in MStr.runs: first character, kind, s0, e0. */
const RUN_W = 4;

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

/**
 * Collects runs, joining a run to the one before it where the mapping
 * continues. One builder serves every MStr operation (none of them nests
 * another), so that building a string allocates only its result.
 */
class RunBuilder {
  private buf = new Int32Array(256);
  n = 0;
  reset(): this {
    this.n = 0;
    return this;
  }
  push(first: number, kind: number, s0: number, e0: number): void {
    const b = this.buf;
    if (this.n) {
      const k = (this.n - 1) * RUN_W;
      // an IDENT run continued (the next character is the next offset), or a SYN run repeated
      if (b[k + 1] === kind && (kind === IDENT ? b[k + 2] + (first - b[k]) === s0 : b[k + 2] === s0 && b[k + 3] === e0)) return;
    }
    if ((this.n + 1) * RUN_W > b.length) {
      const grown = new Int32Array(b.length * 2);
      grown.set(b);
      this.buf = grown;
    }
    const k = this.n++ * RUN_W;
    this.buf[k] = first;
    this.buf[k + 1] = kind;
    this.buf[k + 2] = s0;
    this.buf[k + 3] = e0;
  }
  /** The first run: kind, s0, e0 (when n is 1, the whole string's mapping). */
  get kind(): number {
    return this.buf[1];
  }
  get s0(): number {
    return this.buf[2];
  }
  get e0(): number {
    return this.buf[3];
  }
  runs(): Int32Array {
    return this.buf.slice(0, this.n * RUN_W);
  }
}
const RB = new RunBuilder();

export class MStr {
  private constructor(
    readonly text: string,
    private readonly mode: number,
    private readonly s0: number,
    private readonly e0: number,
    /** RUNS mode: the runs (RUN_W numbers each). */
    private readonly runs: Int32Array | undefined,
    /** Where the string sits (and where an empty one would have been); undefined: s0 to s0 + length (a string read as is). */
    private readonly where: Span | undefined,
  ) {}

  /** Where the string sits: from the start of its first character to the end of its last. */
  private get at(): Span {
    return this.where ?? { start: this.s0, end: this.s0 + this.text.length };
  }

  static source(text: string, offset: number): MStr {
    // (no span kept: the 1 MB topology has 44000 attribute values)
    return new MStr(text, IDENT, offset, 0, undefined, undefined);
  }

  /** Generated text: every character maps to the whole span that caused it. */
  static synthetic(text: string, where: Span): MStr {
    return new MStr(text, SYN, where.start, where.end, undefined, where);
  }

  /** A string of runs (one run: the IDENT or SYN string it is). */
  private static ofRuns(text: string, rb: RunBuilder, at: Span): MStr {
    if (rb.n === 1) return new MStr(text, rb.kind, rb.s0, rb.kind === SYN ? rb.e0 : 0, undefined, at);
    return new MStr(text, RUNS, 0, 0, rb.runs(), at);
  }

  /** Appends this string's runs, its characters starting at index `base` of the new string. */
  private addRuns(rb: RunBuilder, base: number, from = 0, to = this.text.length): void {
    if (from >= to) return;
    if (this.mode === IDENT) rb.push(base, IDENT, this.s0 + from, 0);
    else if (this.mode === SYN) rb.push(base, SYN, this.s0, this.e0);
    else {
      const r = this.runs!;
      for (let k = this.runAt(from); k < r.length && r[k] < to; k += RUN_W) {
        const first = Math.max(r[k], from);
        rb.push(base + first - from, r[k + 1], r[k + 1] === IDENT ? r[k + 2] + (first - r[k]) : r[k + 2], r[k + 3]);
      }
    }
  }

  /** RUNS mode: the index in runs of the run holding character i. */
  private runAt(i: number): number {
    const r = this.runs!;
    let lo = 0;
    let hi = r.length / RUN_W - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (r[mid * RUN_W] <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo * RUN_W;
  }

  static concat(parts: MStr[], whereIfEmpty?: Span): MStr {
    if (parts.length === 1) return parts[0];
    let text = '';
    for (const p of parts) text += p.text;
    const at = parts.length ? { start: parts[0].at.start, end: parts[parts.length - 1].at.end } : whereIfEmpty ?? { start: 0, end: 0 };
    return MStr.joined(parts, text, at);
  }

  /** parts, whose texts make text, as one string that sits at `at`. */
  private static joined(parts: MStr[], text: string, at: Span): MStr {
    if (text.length === 0) return new MStr(text, IDENT, at.start, 0, undefined, at);
    const rb = RB.reset();
    let k = 0;
    for (const p of parts) {
      p.addRuns(rb, k);
      k += p.text.length;
    }
    return MStr.ofRuns(text, rb, at);
  }

  get length(): number {
    return this.text.length;
  }

  private startAt(i: number): number {
    if (this.mode === IDENT) return this.s0 + i;
    if (this.mode === SYN) return this.s0;
    const r = this.runs!;
    const k = this.runAt(i);
    return r[k + 1] === IDENT ? r[k + 2] + (i - r[k]) : r[k + 2];
  }

  private endAt(i: number): number {
    if (this.mode === IDENT) return this.s0 + i + 1;
    if (this.mode === SYN) return this.e0;
    const r = this.runs!;
    const k = this.runAt(i);
    return r[k + 1] === IDENT ? r[k + 2] + (i - r[k]) + 1 : r[k + 3];
  }

  slice(a: number, b: number = this.text.length): MStr {
    const n = this.text.length;
    a = Math.max(0, Math.min(a, n));
    b = Math.max(a, Math.min(b, n));
    if (a === b) {
      const pos = a < n ? this.startAt(a) : a > 0 ? this.endAt(a - 1) : this.at.start;
      return new MStr('', IDENT, pos, 0, undefined, undefined);
    }
    if (a === 0 && b === n) return this;
    const text = this.text.slice(a, b);
    if (this.mode === IDENT) return new MStr(text, IDENT, this.s0 + a, 0, undefined, undefined);
    const at = { start: this.startAt(a), end: this.endAt(b - 1) };
    if (this.mode === SYN) return new MStr(text, SYN, this.s0, this.e0, undefined, at);
    const r = this.runs!;
    const k = this.runAt(a);
    if (k + RUN_W >= r.length || r[k + RUN_W] >= b) {
      // inside one run
      return r[k + 1] === IDENT ? new MStr(text, IDENT, r[k + 2] + (a - r[k]), 0, undefined, undefined) : new MStr(text, SYN, r[k + 2], r[k + 3], undefined, at);
    }
    const rb = RB.reset();
    this.addRuns(rb, 0, a, b);
    return MStr.ofRuns(text, rb, at);
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
    const r = this.runs!;
    for (let k = this.runAt(from); k < r.length && r[k] < to; k += RUN_W) {
      let s: number;
      let e: number;
      if (r[k + 1] === IDENT) {
        const first = Math.max(r[k], from);
        const last = Math.min(k + RUN_W < r.length ? r[k + RUN_W] : this.text.length, to) - 1;
        s = r[k + 2] + (first - r[k]);
        e = r[k + 2] + (last - r[k]) + 1;
      } else {
        s = r[k + 2];
        e = r[k + 3];
      }
      if (s < lo) lo = s;
      if (e > hi) hi = e;
    }
    return { start: lo, end: hi };
  }

  /** The same string with every source offset mapped through m (see engine/incremental.ts). */
  mapOffsets(m: OffsetMap): MStr {
    const n = this.text.length;
    const at = mapSpan(this.at, m);
    if (this.mode === IDENT) {
      if (n === 0) return new MStr(this.text, IDENT, at.start, 0, undefined, at);
      if (m.uniform(this.s0, this.s0 + n - 1)) return new MStr(this.text, IDENT, m.map(this.s0, false), 0, undefined, at);
    } else if (this.mode === SYN) {
      const s = m.map(this.s0, false);
      return new MStr(this.text, SYN, s, this.e0 === this.s0 ? s : m.map(this.e0, true), undefined, at);
    }
    const rb = RB.reset();
    const mapIdent = (first: number, s0: number, len: number) => {
      if (m.uniform(s0, s0 + len - 1)) rb.push(first, IDENT, m.map(s0, false), 0);
      // (a run whose characters moved apart: each its own)
      else for (let i = 0; i < len; i++) rb.push(first + i, SYN, m.map(s0 + i, false), m.map(s0 + i + 1, true));
    };
    if (this.mode === IDENT) mapIdent(0, this.s0, n);
    else {
      const r = this.runs!;
      for (let k = 0; k < r.length; k += RUN_W) {
        const len = (k + RUN_W < r.length ? r[k + RUN_W] : n) - r[k];
        if (r[k + 1] === IDENT) mapIdent(r[k], r[k + 2], len);
        else {
          const s = m.map(r[k + 2], false);
          rb.push(r[k], SYN, s, r[k + 3] === r[k + 2] ? s : m.map(r[k + 3], true));
        }
      }
    }
    return MStr.ofRuns(this.text, rb, at);
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
      const r = this.runs!;
      for (let k = 0; k < r.length; k += RUN_W) {
        if (r[k + 1] === IDENT) {
          const len = (k + RUN_W < r.length ? r[k + RUN_W] : n) - r[k];
          fn(r[k + 2], false);
          fn(r[k + 2] + len - 1, false);
          fn(r[k + 2] + len, true);
        } else {
          fn(r[k + 2], false);
          if (r[k + 3] !== r[k + 2]) fn(r[k + 3], true);
        }
      }
    }
    fn(this.at.start, false);
    if (this.at.end !== this.at.start) fn(this.at.end, true);
  }

  /**
   * The same string with its runs rewritten (engine/shapes.ts): fn gets each
   * run, its text and whether it was read as is (character i at offset s0 + i;
   * e0 = s0 + its length) or generated (every character [s0, e0)), and returns
   * what stands in its place; where the string sits goes through m.
   */
  rewrite(m: OffsetMap, fn: (text: string, read: boolean, s0: number, e0: number) => MStr[]): MStr {
    const at = mapSpan(this.at, m);
    const n = this.text.length;
    const parts: MStr[] = [];
    if (n === 0) return new MStr('', IDENT, at.start, 0, undefined, at);
    if (this.mode === IDENT) parts.push(...fn(this.text, true, this.s0, this.s0 + n));
    else if (this.mode === SYN) parts.push(...fn(this.text, false, this.s0, this.e0));
    else {
      const r = this.runs!;
      for (let k = 0; k < r.length; k += RUN_W) {
        const end = k + RUN_W < r.length ? r[k + RUN_W] : n;
        const t = this.text.slice(r[k], end);
        parts.push(...(r[k + 1] === IDENT ? fn(t, true, r[k + 2], r[k + 2] + t.length) : fn(t, false, r[k + 2], r[k + 3])));
      }
    }
    let text = '';
    for (const p of parts) text += p.text;
    return MStr.joined(parts, text, at);
  }

  /** The same characters with the same source spans, and the same place. */
  sameAs(o: MStr): boolean {
    if (this.text !== o.text) return false;
    const [a, b] = [this.at, o.at];
    if (a.start !== b.start || a.end !== b.end) return false;
    if (this.text.length === 0) return true;
    // (two strings read as is, or two generated ones: the same where they start, or where their one span is)
    if (this.mode === o.mode && this.mode !== RUNS) return this.s0 === o.s0 && (this.mode === IDENT || this.e0 === o.e0);
    // Run by run (the proof compares every string of a node's analysis; one character at a time, with
    // a search for its run, was most of the comparison). Where a run of each string holds the same
    // characters, they map alike if they do at the first of them and are runs of one kind: a read run
    // moves on by one a character, a generated one stays. (Runs of two kinds agree on one character at most.)
    const n = this.text.length;
    const [ra, rb] = [this.runs, o.runs];
    let [ka, kb] = [0, 0];
    for (let i = 0; i < n; ) {
      if (ra) while (ka + RUN_W < ra.length && ra[ka + RUN_W] <= i) ka += RUN_W;
      if (rb) while (kb + RUN_W < rb.length && rb[kb + RUN_W] <= i) kb += RUN_W;
      const kindA = ra ? ra[ka + 1] : this.mode;
      const kindB = rb ? rb[kb + 1] : o.mode;
      if (this.startAt(i) !== o.startAt(i) || this.endAt(i) !== o.endAt(i)) return false;
      const next = Math.min(ra && ka + RUN_W < ra.length ? ra[ka + RUN_W] : n, rb && kb + RUN_W < rb.length ? rb[kb + RUN_W] : n);
      if (kindA !== kindB && next - i > 1) return false;
      i = next;
    }
    return true;
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
