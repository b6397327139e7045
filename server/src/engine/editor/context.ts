/**
 * Where the cursor is, read from the current text around it: which element,
 * attribute or value of XML; which QEMU option, property or value of a
 * command line. Works on half-written documents and never reads the whole
 * document when a local scan answers (completion runs on every keystroke of a
 * 1 MB document, before any analysis of the new text).
 */

export interface XmlContext {
  /** element: writing an element name after `<` (or `</`); attr: an attribute name; value: an attribute value; text: outside tags. */
  kind: 'element' | 'attr' | 'value' | 'text';
  /** Innermost element that encloses the tag being written (or the text); computed on first read. */
  readonly parent: string | undefined;
  /** Element whose start tag holds the cursor (attr, value). */
  element?: string;
  attr?: string;
  /** Offset of the `<` of the tag holding the cursor (text: of the last `>` before it, or -1). */
  tagStart: number;
  /** Start of the partial element name / attribute name / value. */
  valueStart?: number;
  /** text: where the text run holding the cursor starts. */
  textStart?: number;
  /** attr, value: attributes already written in the tag. */
  present?: string[];
}

/**
 * Offset of the `<` of the start tag matching the end tag whose `<` is at q
 * (named name), when the whole element is known to be balanced; else
 * undefined. Lets the backward scan jump over elements it need not read.
 */
export type Skip = (q: number, name: string) => number | undefined;

/** Where in XML the cursor at off is, from the raw text. */
export function xmlContext(t: string, off: number, skip?: Skip): XmlContext {
  const lt = t.lastIndexOf('<', off - 1);
  const gt = t.lastIndexOf('>', off - 1);
  const lazyParent = (end: number) => {
    let done = false;
    let value: string | undefined;
    return {
      get parent() {
        if (!done) {
          value = enclosingElement(t, end, skip);
          done = true;
        }
        return value;
      },
    };
  };
  const withParent = <T extends object>(x: T, end: number): T & { readonly parent: string | undefined } => Object.defineProperties(x, Object.getOwnPropertyDescriptors(lazyParent(end))) as T & { readonly parent: string | undefined };
  if (lt > gt) {
    const tag = t.slice(lt, off);
    const nm = /^<\/?([\w.:-]*)$/.exec(tag);
    if (nm) return withParent({ kind: 'element' as const, tagStart: lt, valueStart: off - nm[1].length }, lt);
    const el = /^<([\w.:-]+)/.exec(tag)?.[1];
    const present = [...tag.matchAll(/([\w.:-]+)\s*=\s*(?:"[^"]*"|'[^']*')/g)].map((m) => m[1]);
    const val = /([\w.:-]+)\s*=\s*(["'])([^"']*)$/.exec(tag);
    if (val) return withParent({ kind: 'value' as const, element: el, attr: val[1], tagStart: lt, valueStart: off - val[3].length, present }, lt);
    const an = /\s([\w.:-]*)$/.exec(tag);
    if (an) return withParent({ kind: 'attr' as const, element: el, tagStart: lt, valueStart: off - an[1].length, present }, lt);
    return withParent({ kind: 'text' as const, tagStart: lt }, lt);
  }
  return withParent({ kind: 'text' as const, tagStart: gt, textStart: gt + 1 }, off);
}

const TAG = /<(\/?)([\w.:-]+)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/y;
const TOKENS = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[[\s\S]*?\]\]>|<(\/?)([\w.:-]+)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g;

/**
 * The innermost element still open at offset end (end tags close what they
 * name and everything opened inside it; stray end tags are ignored).
 * Scans back from end, so its cost is the distance to the enclosing start
 * tag; a document whose end tags do not balance is read from the start.
 */
export function enclosingElement(t: string, end: number, skip?: Skip): string | undefined {
  const r = scanBack(t, end, Infinity, skip);
  return r === FAR ? undefined : r;
}

const FAR = Symbol('far');

/**
 * The same, when the enclosing start tag is at most maxTags tags back; false
 * when it is further (the cursor is in a large element: a topology's
 * <cluster>, never the text of a <qemu>, which holds no elements).
 */
export function enclosingNear(t: string, end: number, maxTags: number): string | undefined | false {
  const r = scanBack(t, end, maxTags);
  return r === FAR ? false : r;
}

/** One entry of the last full scan: typing in one tag asks again with the same text before it. */
let memo: { text: string; end: number; result: string | undefined } | undefined;

function scanBack(t: string, end: number, maxTags: number, skip?: Skip): string | undefined | typeof FAR {
  const full = maxTags === Infinity;
  if (full && memo && memo.end === end && (memo.text === t || memo.text.slice(0, end) === t.slice(0, end))) return memo.result;
  const pending = new Map<string, number>();
  let open = 0;
  let p = end;
  let tags = 0;
  while (p > 0) {
    // (charCodeAt loops: far cheaper than lastIndexOf per tag on a large document)
    let gt = p - 1;
    while (gt >= 0 && t.charCodeAt(gt) !== 62) gt--;
    if (gt < 0) break;
    const c1 = gt >= 1 ? t.charCodeAt(gt - 1) : 0;
    if (c1 === 45 && gt >= 2 && t.charCodeAt(gt - 2) === 45) {
      // A comment: from its first <!-- (nested <!-- are comment text).
      let s = t.lastIndexOf('<!--', gt - 2);
      if (s >= 0) {
        for (let e = s > 0 ? t.lastIndexOf('<!--', s - 1) : -1; e >= 0; e = s > 0 ? t.lastIndexOf('<!--', s - 1) : -1) {
          const close = t.indexOf('-->', e + 4);
          if (close >= 0 && close + 3 <= s) break;
          s = e;
        }
        p = s;
        continue;
      }
    } else if (c1 === 63) {
      const s = t.lastIndexOf('<?', gt - 1);
      if (s >= 0) {
        p = s;
        continue;
      }
    } else if (c1 === 93 && gt >= 2 && t.charCodeAt(gt - 2) === 93) {
      const s = t.lastIndexOf('<![CDATA[', gt - 2);
      if (s >= 0) {
        p = s;
        continue;
      }
    }
    let lt = gt - 1;
    while (lt >= 0 && t.charCodeAt(lt) !== 60) lt--;
    if (lt < 0) break;
    const tag = tagAt(t, lt, gt);
    if (!tag) {
      // A `>` in text, not the end of a tag.
      p = gt;
      continue;
    }
    p = lt;
    if (++tags > maxTags) return FAR;
    const name = tag.name;
    if (tag.close) {
      const s = skip?.(lt, name);
      if (s !== undefined && s < lt) {
        // A whole element: it changes nothing before it.
        p = s;
        continue;
      }
      pending.set(name, (pending.get(name) ?? 0) + 1);
      open++;
    } else if (!tag.selfClosing) {
      const n = pending.get(name) ?? 0;
      if (n > 0) {
        pending.set(name, n - 1);
        open--;
      } else if (open === 0) return remember(name);
      // else: left open inside an element an end tag further down closes.
    }
  }
  return remember(open === 0 ? undefined : enclosingForward(t.slice(0, end)));

  function remember(result: string | undefined) {
    if (full && end > 4096) memo = { text: t, end, result };
    return result;
  }
}

/** [\w.:-] */
function nameChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 58) || c === 95 || c === 46 || c === 45;
}

/**
 * The tag from the `<` at lt to the `>` at gt, if that is one tag (TOKENS'
 * tag alternative): a name, then text with balanced quotes. Cheap checks
 * first: this runs once per tag between the cursor and its enclosing element.
 */
function tagAt(t: string, lt: number, gt: number): { name: string; close: boolean; selfClosing: boolean } | undefined {
  const close = t.charCodeAt(lt + 1) === 47;
  let i = lt + (close ? 2 : 1);
  const start = i;
  while (i < gt && nameChar(t.charCodeAt(i))) i++;
  if (i === start) return undefined;
  const name = t.slice(start, i);
  // Quotes must pair up, and no `>` outside them before gt.
  let quote = 0;
  let plain = true;
  for (; i < gt; i++) {
    const c = t.charCodeAt(i);
    if (quote) {
      if (c === quote) quote = 0;
    } else if (c === 34 || c === 39) quote = c;
    else if (c === 62) plain = false;
  }
  if (quote) return undefined;
  if (!plain) {
    TAG.lastIndex = lt;
    const m = TAG.exec(t);
    if (!m || m.index + m[0].length !== gt + 1) return undefined;
  }
  return { name, close, selfClosing: !close && t.charCodeAt(gt - 1) === 47 };
}

/** The same, reading the prefix from its start (exact for unbalanced end tags). */
export function enclosingForward(prefix: string): string | undefined {
  const stack: string[] = [];
  const re = new RegExp(TOKENS.source, 'g');
  for (let m = re.exec(prefix); m; m = re.exec(prefix)) {
    if (!m[2]) continue;
    if (m[1]) {
      const i = stack.lastIndexOf(m[2]);
      if (i >= 0) stack.length = i;
    } else if (!m[4]) stack.push(m[2]);
  }
  return stack[stack.length - 1];
}

export interface QemuWordContext {
  /** Start of the word being written (after whitespace, a quote or a backslash). */
  start: number;
  /** The word up to the cursor. */
  word: string;
  /** The word before it (quotes dropped, comment lines and line continuations skipped): the option a value belongs to. */
  previous: string | undefined;
}

/**
 * The word at the cursor of a command line or launch script, and the word
 * before it. regionStart bounds the scan (the start of a <qemu> element's
 * text); the scan goes back line by line only as far as the previous word.
 */
export function qemuWordContext(t: string, off: number, regionStart = 0): QemuWordContext {
  let s = off;
  while (s > regionStart && !/[\s'"\\]/.test(t[s - 1])) s--;
  const word = t.slice(s, off);
  let previous: string | undefined;
  let lineEnd = s;
  let last = true;
  while (lineEnd >= regionStart && previous === undefined) {
    const nl = lineEnd > regionStart ? t.lastIndexOf('\n', lineEnd - 1) : -1;
    const lineStart = Math.max(regionStart, nl + 1);
    let line = t.slice(lineStart, lineEnd);
    if (!/^\s*#/.test(line)) {
      // A backslash-newline joins lines (not on the cursor's own line: the cut is not a newline).
      if (!last) line = line.replace(/\\\r?$/, ' ');
      const words = line
        .replace(/["']/g, '')
        .split(/\s+/)
        .filter((w) => w && w !== '\\');
      if (words.length) previous = words[words.length - 1];
    }
    if (nl < regionStart || lineStart <= regionStart) break;
    lineEnd = nl;
    last = false;
  }
  return { start: s, word, previous };
}

/** The value of the last `<qemu:arg value=…>` (any prefix) that ends before offset before: the option a following <qemu:arg> value belongs to. */
export function previousQemuArg(t: string, before: number): string | undefined {
  const re = /<[\w.-]+:arg\s+value\s*=\s*(["'])(.*?)\1/y;
  for (let i = before > 0 ? t.lastIndexOf(':arg', before - 1) : -1; i >= 0; i = i > 0 ? t.lastIndexOf(':arg', i - 1) : -1) {
    let j = i;
    while (j > 0 && /[\w.-]/.test(t[j - 1])) j--;
    if (j === i || j === 0 || t[j - 1] !== '<') continue;
    re.lastIndex = j - 1;
    const m = re.exec(t);
    if (m && m.index + m[0].length <= before) return m[2];
  }
  return undefined;
}
