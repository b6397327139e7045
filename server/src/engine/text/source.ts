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
 */
export class MStr {
  private constructor(
    readonly text: string,
    private readonly starts: Int32Array,
    private readonly ends: Int32Array,
    /** Span used for an empty string (where it would have been). */
    private readonly at: Span,
  ) {}

  static source(text: string, offset: number): MStr {
    const n = text.length;
    const s = new Int32Array(n);
    const e = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = offset + i;
      e[i] = offset + i + 1;
    }
    return new MStr(text, s, e, { start: offset, end: offset + n });
  }

  /** Generated text: every character maps to the whole span that caused it. */
  static synthetic(text: string, where: Span): MStr {
    const n = text.length;
    return new MStr(text, new Int32Array(n).fill(where.start), new Int32Array(n).fill(where.end), where);
  }

  static concat(parts: MStr[], whereIfEmpty?: Span): MStr {
    const text = parts.map((p) => p.text).join('');
    const s = new Int32Array(text.length);
    const e = new Int32Array(text.length);
    let k = 0;
    for (const p of parts) {
      s.set(p.starts, k);
      e.set(p.ends, k);
      k += p.text.length;
    }
    const at = parts.length ? { start: parts[0].at.start, end: parts[parts.length - 1].at.end } : whereIfEmpty ?? { start: 0, end: 0 };
    return new MStr(text, s, e, at);
  }

  get length(): number {
    return this.text.length;
  }

  slice(a: number, b: number = this.text.length): MStr {
    a = Math.max(0, Math.min(a, this.text.length));
    b = Math.max(a, Math.min(b, this.text.length));
    if (a === b) {
      const pos = a < this.text.length ? this.starts[a] : a > 0 ? this.ends[a - 1] : this.at.start;
      return new MStr('', new Int32Array(0), new Int32Array(0), { start: pos, end: pos });
    }
    return new MStr(this.text.slice(a, b), this.starts.slice(a, b), this.ends.slice(a, b), {
      start: this.starts[a],
      end: this.ends[b - 1],
    });
  }

  /** Source span of characters [a, b) (the whole string by default). */
  span(a = 0, b = this.text.length): Span {
    if (a >= b || this.text.length === 0) return this.slice(a, a).at;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = a; i < b; i++) {
      if (this.starts[i] < lo) lo = this.starts[i];
      if (this.ends[i] > hi) hi = this.ends[i];
    }
    return { start: lo, end: hi };
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
    while (a < b && /\s/.test(t[a])) a++;
    while (b > a && /\s/.test(t[b - 1])) b--;
    return this.slice(a, b);
  }

  toString(): string {
    return this.text;
  }
}
