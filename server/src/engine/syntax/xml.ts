/**
 * A small, tolerant XML reader that keeps positions. It never throws: on bad
 * input it records a problem and recovers (unclosed elements are closed by
 * their parent's end tag or the end of the document; stray end tags are
 * skipped), so an editor always gets a tree to work with.
 *
 * Written by hand because the tolerant parsers on npm were ~50x slower than a
 * non-tolerant one on a 1 MB document (see issue 2 and `npm run bench`).
 */
import { isSpace, MStr, OffsetMap, Span } from '../text/source';

export interface XmlAttr {
  readonly name: string;
  readonly nameSpan: Span;
  /** Decoded value; each character maps into the raw attribute text. */
  readonly value: MStr;
  /** Span of the value between the quotes. */
  readonly valueSpan: Span;
  /** Span of the whole attribute `name="value"`. */
  readonly span: Span;
}

export interface XmlText {
  readonly kind: 'text';
  readonly value: MStr;
  readonly span: Span;
}

export interface XmlElement {
  readonly kind: 'element';
  /** Qualified name as written, e.g. "qemu:commandline". */
  readonly name: string;
  readonly prefix: string | undefined;
  readonly local: string;
  /** Namespace URI the prefix resolves to (undefined if none / undeclared). */
  ns: string | undefined;
  readonly nameSpan: Span;
  readonly attrs: XmlAttr[];
  readonly children: (XmlElement | XmlText)[];
  parent: XmlElement | undefined;
  /** From `<` to the end of the end tag (or of the last child when unclosed). */
  readonly span: Span;
  readonly startTagSpan: Span;
  readonly endTagSpan: Span | undefined;
  readonly selfClosing: boolean;
  /** Namespace declarations on this element: prefix ('' for default) → URI. */
  readonly nsDecls: Map<string, string>;
  /** What the parse's XmlTwins said of this child of the root (its holes; undefined once an edit moved it: DeferredElement.movedTo). */
  readonly note?: unknown;
}

/**
 * What lets a parse leave the content of a child of the root unread until it
 * is first read: the caller (engine/shapes.ts) knows when a child's text is
 * that of a child read before with only names and numbers changed, which
 * reads the same way. Forty nodes of one shape are one read and thirty-nine
 * start tags until something looks inside them.
 */
export interface XmlTwins {
  /**
   * A child of the root was read in full: closed by its own end tag, with
   * no problem, no namespace prefix or declaration, and no namespace in scope
   * (what makes it a model for twins).
   */
  read(el: XmlElement): void;
  /**
   * The start tag of a child of the root was read (its attributes are set):
   * where the element ends, if its text is a twin of one given to read() and
   * so reads as that one did with its names and numbers changed; and what
   * becomes the element's note.
   */
  endOf(el: XmlElement): { end: number; note: unknown } | undefined;
}

/** The nsDecls of the many elements that declare no namespace (one shared map: never written to). */
const NO_NS_DECLS: Map<string, string> = new Map();

/** The attributes and the children of the elements that have none (shared arrays: never written to). */
const NO_ATTRS: XmlAttr[] = [];
const NO_CHILDREN: (XmlElement | XmlText)[] = [];

export interface XmlProblem {
  span: Span;
  message: string;
}

export interface XmlDocument {
  root: XmlElement | undefined;
  /** Every top-level element (a well-formed document has one). */
  tops: XmlElement[];
  problems: XmlProblem[];
  /** Prefixes used on elements or attributes that no xmlns declares. */
  undeclaredPrefixes: { prefix: string; span: Span; element: XmlElement }[];
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Decode entity and character references in raw text starting at `offset`. */
export function decodeXmlText(raw: string, offset: number, problems?: XmlProblem[]): MStr {
  if (raw.indexOf('&') < 0) return MStr.source(raw, offset);
  const parts: MStr[] = [];
  let from = 0;
  for (;;) {
    const amp = raw.indexOf('&', from);
    if (amp < 0) break;
    if (amp > from) parts.push(MStr.source(raw.slice(from, amp), offset + from));
    const semi = raw.indexOf(';', amp);
    const ref = semi > amp ? raw.slice(amp + 1, semi) : '';
    let ch: string | undefined;
    if (semi > amp && semi - amp < 12) {
      if (ref.startsWith('#x') || ref.startsWith('#X')) {
        const cp = parseInt(ref.slice(2), 16);
        if (Number.isFinite(cp) && cp <= 0x10ffff) ch = String.fromCodePoint(cp);
      } else if (ref.startsWith('#')) {
        const cp = parseInt(ref.slice(1), 10);
        if (Number.isFinite(cp) && cp <= 0x10ffff) ch = String.fromCodePoint(cp);
      } else ch = ENTITIES[ref];
    }
    if (ch === undefined) {
      problems?.push({ span: { start: offset + amp, end: offset + (semi > amp ? semi + 1 : amp + 1) }, message: `unknown or malformed entity reference '${raw.slice(amp, semi > amp ? semi + 1 : amp + 1)}'` });
      parts.push(MStr.source('&', offset + amp));
      from = amp + 1;
      continue;
    }
    parts.push(MStr.synthetic(ch, { start: offset + amp, end: offset + semi + 1 }));
    from = semi + 1;
  }
  if (from < raw.length) parts.push(MStr.source(raw.slice(from), offset + from));
  return MStr.concat(parts, { start: offset, end: offset });
}

/** [A-Za-z_:\u00C0-\uFFFF] */
function isNameStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58 || c >= 0xc0;
}
/** [A-Za-z0-9_:.\-\u00B7\u00C0-\uFFFF] */
function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 48 && c <= 57) || c === 46 || c === 45 || c === 0xb7;
}

/**
 * text[a, b) as a string of its own. V8 makes a slice of 13 characters or
 * more a view of the whole text, and a tree's strings outlive their text: an
 * element that typing does not touch is taken into the next parse as it is,
 * and so are the models read from it. With views, every text a 1 MB document
 * ever had kept one element alive kept its whole 1 MB (40 edits in different
 * nodes: 46 MB). A string used as a property key is copied into V8's table of
 * such strings (and shared there with its equals); the table holds it only as
 * long as something else does.
 */
function own(text: string, a: number, b: number): string {
  const s = text.slice(a, b);
  if (b - a < 13) return s;
  OWN[s] = 0;
  for (const k in OWN) {
    delete OWN[k];
    return k;
  }
  return s;
}
const OWN: Record<string, number> = Object.create(null);

/** s as a string of its own: not a view of a larger text, nor made of such views (see own()). */
export function ownString(s: string): string {
  return s.length < 13 ? s : own(s, 0, s.length);
}

/**
 * Whitespace between elements, one string each (a 1 MB topology has 27000
 * such texts of a dozen kinds). Bounded, like NAMES. (own() would share them
 * too, through V8's table, but a Map is faster: parsing the 1 MB topology
 * took 30–35 ms with own() for them, 22–27 ms with this.)
 */
const SPACES = new Map<string, string>();
function spaceAt(text: string, a: number, b: number): string {
  const s = text.slice(a, b);
  const known = SPACES.get(s);
  if (known !== undefined) return known;
  const mine = own(text, a, b);
  if (SPACES.size < 4096) SPACES.set(mine, mine);
  return mine;
}
/** Text between tags: whitespace shared (spaceAt), anything else its own string. */
function spaceOrOwn(text: string, a: number, b: number): string {
  for (let k = a; k < b; k++) if (!isSpace(text.charCodeAt(k))) return own(text, a, b);
  return spaceAt(text, a, b);
}

/**
 * What a parse keeps for the next parse of the same document: the root's
 * children that were closed by their own end tag (or self-closing), with the
 * problems found inside them. Such an element's subtree depends only on its
 * own text and on the name of the element it sits in (an end tag inside it
 * naming an outer element would have closed it early), so where its text is
 * unchanged, the next parse takes it as it is (moved, when text before it
 * changed length) instead of reading it again.
 */
interface KeptChild {
  el: ElementBase & XmlElement;
  problems: XmlProblem[];
  parentName: string;
  /** The namespace scope it was resolved in, and the undeclared prefixes found in it then. */
  scope?: string;
  undeclared?: XmlDocument['undeclaredPrefixes'];
}
interface ReuseInfo {
  children: Map<number, KeptChild>;
}
/**
 * Where a document keeps its ReuseInfo: on itself, under a symbol. (In a
 * WeakMap, V8 kept every dropped document's tree alive through the next
 * young-generation collection, and copied it: see engine/index.ts, VIEW.)
 */
const REUSE = Symbol('reuse');
const reuseInfoOf = (doc: XmlDocument): ReuseInfo | undefined => (doc as { [REUSE]?: ReuseInfo })[REUSE];

/** How the text changed since `prev` was parsed (see engine/incremental.ts, TextChange). */
export interface XmlReuse {
  prev: XmlDocument;
  change: { start: number; oldEnd: number; newEnd: number; delta: number };
}

const sp = (x: Span, d: number): Span => ({ start: x.start + d, end: x.end + d });
const byOffset = (d: number): OffsetMap => ({ map: (o) => o + d, uniform: () => true });

/*
 * The tree keeps offsets as numbers and makes a span object when one is read:
 * a 1 MB topology has 44000 attributes and 18000 elements, and their span
 * objects (three per attribute, three per element) were a third of the tree.
 * Spans are values (never changed in place), so a fresh one per read is the
 * same to every reader.
 */

/**
 * A parsed attribute. A value without references is kept as its raw text,
 * and read as an MStr made then (an MStr is a value: one per read is the same
 * to every reader): 72 bytes less for each of the 44000 attributes of the
 * 1 MB topology.
 */
class Attr implements XmlAttr {
  constructor(
    readonly name: string,
    /** The value: its raw text (read as is, from v0), or decoded. */
    private v: string | MStr,
    private n0: number,
    private v0: number,
    private v1: number,
    /** The end of the whole attribute (after its closing quote). */
    private e: number,
  ) {}

  /** Moves it by d, in place (an attribute of a tree no one has seen yet: DeferredElement). */
  shift(d: number): void {
    if (typeof this.v !== 'string') this.v = this.v.mapOffsets(byOffset(d));
    this.n0 += d;
    this.v0 += d;
    this.v1 += d;
    this.e += d;
  }

  get value(): MStr {
    return typeof this.v === 'string' ? MStr.source(this.v, this.v0) : this.v;
  }
  get nameSpan(): Span {
    return { start: this.n0, end: this.n0 + this.name.length };
  }
  get valueSpan(): Span {
    return { start: this.v0, end: this.v1 };
  }
  get span(): Span {
    return { start: this.n0, end: this.e };
  }
  moved(d: number): Attr {
    return new Attr(this.name, typeof this.v === 'string' ? this.v : this.v.mapOffsets(byOffset(d)), this.n0 + d, this.v0 + d, this.v1 + d, this.e + d);
  }
}

/** What every element holds but its attributes and children: its name, and its offsets. */
abstract class ElementBase {
  ns: string | undefined = undefined;
  note: unknown = undefined;
  nsDecls: Map<string, string> = NO_NS_DECLS;
  selfClosing = false;
  /** The end of the element (-1 while its start tag is read). */
  e = -1;
  /** The end of its start tag. */
  te = -1;
  /** Its end tag (es = -1: none). */
  es = -1;
  ee = -1;

  constructor(
    readonly name: string,
    readonly prefix: string | undefined,
    readonly local: string,
    /** Where `<` is (moved only by shiftContent, in a tree no one has seen yet). */
    public s: number,
    public parent: XmlElement | undefined,
  ) {}

  get kind(): 'element' {
    return 'element';
  }
  get nameSpan(): Span {
    return { start: this.s + 1, end: this.s + 1 + this.name.length };
  }
  get span(): Span {
    return { start: this.s, end: this.e };
  }
  get startTagSpan(): Span {
    return { start: this.s, end: this.te };
  }
  get endTagSpan(): Span | undefined {
    return this.es < 0 ? undefined : { start: this.es, end: this.ee };
  }
}

/** An element read from the text. */
class Element extends ElementBase implements XmlElement {
  attrs: XmlAttr[] = NO_ATTRS;
  children: (XmlElement | XmlText)[] = NO_CHILDREN;
}

/**
 * A child of the root whose content is read when first asked for (XmlTwins):
 * its start tag was read; until then it keeps the text of the document it
 * is in. Read, its content is the content of a parse of its own text alone,
 * moved to where the element is. The next parse of the document, taking it
 * as it is (engine/incremental.ts), makes one of its own that keeps the new
 * text: an element unread never keeps a text the document no longer has
 * (the tree outlives its text: see own()).
 */
class DeferredElement extends ElementBase implements XmlElement {
  attrs: XmlAttr[] = NO_ATTRS;
  private content: (XmlElement | XmlText)[] | undefined = undefined;
  private src: string | undefined;

  /** el moved by d (its attributes too), in the text src. */
  constructor(el: ElementBase & { attrs: XmlAttr[] }, d: number, parent: XmlElement | undefined, note: unknown, src: string) {
    super(el.name, el.prefix, el.local, el.s + d, parent);
    this.attrs = d ? el.attrs.map((a) => (a as Attr).moved(d)) : el.attrs;
    this.ns = el.ns;
    this.te = el.te + d;
    [this.es, this.ee, this.e] = [el.es + d, el.ee + d, el.e + d];
    this.note = note;
    this.src = src;
  }

  /** This element at d from here in the text src, unread (undefined once read: a MovedElement moves it). */
  movedTo(d: number, src: string, parent: XmlElement): DeferredElement | undefined {
    // (its note, its holes, is only good where it was found)
    return this.content ? undefined : new DeferredElement(this, d, parent, d ? undefined : this.note, src);
  }

  get children(): (XmlElement | XmlText)[] {
    if (!this.content) {
      // (the twin made sure it reads without a problem; its scope has no namespace, as the parse alone has)
      this.content = shiftContent(parseXml(this.src!.slice(this.s, this.e)).root!.children, this.s, this);
      this.src = undefined;
    }
    return this.content;
  }
}

/**
 * The children of a parse of an element's own text, moved by d to where the
 * element is, in place: elements of the same class as any other parse's, in
 * a tree no one has seen yet (a MovedElement per element would make every
 * read of a twin's content slower, and the outline of a large cluster reads
 * them all).
 */
function shiftContent(children: (XmlElement | XmlText)[], d: number, parent: XmlElement): (XmlElement | XmlText)[] {
  for (let i = 0; i < children.length; i++) {
    const c = children[i];
    if (c instanceof PlainText) c.start += d;
    else if (c instanceof Element) {
      c.s += d;
      c.e += d;
      c.te += d;
      if (c.es >= 0) [c.es, c.ee] = [c.es + d, c.ee + d];
      c.parent = parent;
      for (const a of c.attrs) (a as Attr).shift(d);
      shiftContent(c.children, d, c);
    } else children[i] = moveNode(c, d, parent);
  }
  return children;
}

function moveNode(c: XmlElement | XmlText, d: number, parent: XmlElement): XmlElement | XmlText {
  if (c instanceof PlainText) return c.moved(d);
  return c.kind === 'text' ? { kind: 'text', value: c.value.mapOffsets(byOffset(d)), span: sp(c.span, d) } : new MovedElement(c as ElementBase & XmlElement, d, parent);
}

/**
 * An element (a reused root child, or one of its descendants) with every
 * offset moved, whose attributes and children are moved when first read:
 * typing in one node of a large cluster moves every node after it, and an
 * analysis reads little of an unchanged node (engine/index.ts keeps its
 * results). Moving it again before they are read moves the original
 * by the sum (no chain of copies). A class, so that every moved element
 * has the same shape (no per-object accessors or side tables).
 */
class MovedElement extends ElementBase implements XmlElement {
  private movedAttrs: XmlAttr[] | undefined = undefined;
  private movedChildren: (XmlElement | XmlText)[] | undefined = undefined;
  /**
   * Where the attributes and the children are still to be taken from, and by
   * how much they move; let go once they are moved (or every element typing
   * moved again would keep the one it was moved from, and that one its own).
   */
  private attrsFrom: XmlElement | undefined;
  private readonly attrsBy: number;
  private childrenFrom: XmlElement | undefined;
  private readonly childrenBy: number;

  constructor(el: ElementBase & XmlElement, d: number, parent: XmlElement | undefined) {
    super(el.name, el.prefix, el.local, el.s + d, parent);
    this.ns = el.ns;
    this.nsDecls = el.nsDecls;
    this.selfClosing = el.selfClosing;
    this.e = el.e + d;
    this.te = el.te + d;
    if (el.es >= 0) [this.es, this.ee] = [el.es + d, el.ee + d];
    const pending = el instanceof MovedElement ? el : undefined;
    if (pending && !pending.movedAttrs) [this.attrsFrom, this.attrsBy] = [pending.attrsFrom, pending.attrsBy + d];
    else [this.attrsFrom, this.attrsBy] = [el, d];
    if (pending && !pending.movedChildren) [this.childrenFrom, this.childrenBy] = [pending.childrenFrom, pending.childrenBy + d];
    else [this.childrenFrom, this.childrenBy] = [el, d];
  }

  get attrs(): XmlAttr[] {
    if (!this.movedAttrs) {
      this.movedAttrs = this.attrsFrom!.attrs.map((a) => (a as Attr).moved(this.attrsBy));
      this.attrsFrom = undefined;
    }
    return this.movedAttrs;
  }
  get children(): (XmlElement | XmlText)[] {
    if (!this.movedChildren) {
      this.movedChildren = this.childrenFrom!.children.map((c) => moveNode(c, this.childrenBy, this));
      this.childrenFrom = undefined;
    }
    return this.movedChildren;
  }
}

/**
 * Element and attribute names, one string each: a 1 MB topology repeats two
 * dozen names 60000 times (2 MB kept otherwise). A known name is found in the
 * text without cutting it out first (by its first character and length).
 * Bounded, so that a document of made-up names cannot grow it without end.
 */
const NAMES = new Map<number, string[]>();
let nameCount = 0;
/** The name text[a, b). */
function nameAt(text: string, a: number, b: number): string {
  const key = text.charCodeAt(a) * 256 + Math.min(b - a, 255);
  const known = NAMES.get(key);
  if (known) for (const k of known) if (k.length === b - a && text.startsWith(k, a)) return k;
  const name = own(text, a, b);
  if (nameCount < 4096) {
    nameCount++;
    if (known) known.push(name);
    else NAMES.set(key, [name]);
  }
  return name;
}

/**
 * A text node without entity or character references, its value and span made
 * when read (values: one per read is the same to every reader): a 1 MB
 * topology has 27000 text nodes, nearly all of them the whitespace between
 * elements, which nothing reads (2.6 MB kept otherwise).
 */
class PlainText implements XmlText {
  constructor(
    private readonly raw: string,
    /** (moved only by shiftContent, in a tree no one has seen yet) */
    public start: number,
  ) {}

  get kind(): 'text' {
    return 'text';
  }
  get value(): MStr {
    return MStr.source(this.raw, this.start);
  }
  get span(): Span {
    return { start: this.start, end: this.start + this.raw.length };
  }
  moved(d: number): PlainText {
    return new PlainText(this.raw, this.start + d);
  }
}

/**
 * Parse text. With `reuse` (the previous parse of this document and how its
 * text changed since), root children whose text did not change are taken
 * from the previous tree: the result is the same as a parse from scratch
 * (test/incremental.test.ts), but only the changed part is read. The reused
 * elements' `parent` becomes the new root (the previous tree is done with).
 */
export function parseXml(text: string, reuse?: XmlReuse, twins?: XmlTwins): XmlDocument {
  const prevInfo = reuse ? reuseInfoOf(reuse.prev) : undefined;
  const change = reuse?.change;
  const info: ReuseInfo = { children: new Map() };
  let childP0 = -1;
  /** Children taken from the previous tree (their namespaces need no second look when the scope is the same). */
  const reused = new Map<XmlElement, KeptChild>();
  const problems: XmlProblem[] = [];
  const tops: XmlElement[] = [];
  const stack: Element[] = [];
  /** The attributes of the start tag being read (copied to the element at its end: an array of their number). */
  const attrs: XmlAttr[] = [];
  const n = text.length;
  let i = 0;
  /** Namespace prefixes and declarations read so far (a child of the root that has any is no model for twins). */
  let nsUses = 0;
  let childNs0 = 0;

  const addChild = (node: XmlElement | XmlText) => {
    const parent = stack[stack.length - 1];
    if (parent) {
      if (parent.children === NO_CHILDREN) parent.children = [node];
      else parent.children.push(node);
    }
    else if (node.kind === 'element') tops.push(node);
    else if (node.value.text.trim()) problems.push({ span: node.span, message: 'text outside the root element' });
  };

  const readName = (at: number): number => {
    let j = at;
    if (j < n && isNameStart(text.charCodeAt(j))) {
      j++;
      while (j < n && isNameChar(text.charCodeAt(j))) j++;
    }
    return j;
  };

  while (i < n) {
    const lt = text.indexOf('<', i);
    const textEnd = lt < 0 ? n : lt;
    if (textEnd > i) {
      const raw = spaceOrOwn(text, i, textEnd);
      // (text without references, most of it the whitespace between elements: its value and span made when read)
      addChild(raw.indexOf('&') < 0 ? new PlainText(raw, i) : { kind: 'text', value: decodeXmlText(raw, i, problems), span: { start: i, end: textEnd } });
    }
    if (lt < 0) break;
    i = lt;
    const c1 = text.charCodeAt(i + 1);
    if (c1 === 33 /* ! */ && text.startsWith('<!--', i)) {
      const close = text.indexOf('-->', i + 4);
      if (close < 0) {
        problems.push({ span: { start: i, end: n }, message: 'unterminated comment' });
        i = n;
      } else {
        // XML forbids "--" inside a comment (and a comment ending "--->"): libxml2, and so libvirt and
        // xmllint, refuse the document ("Double hyphen within comment").
        const dd = text.indexOf('--', i + 4);
        if (dd >= 0 && dd < close) problems.push({ span: { start: dd, end: dd + 2 }, message: `'--' inside a comment: XML does not allow it (libxml2: "Double hyphen within comment")` });
        i = close + 3;
      }
      continue;
    }
    if (c1 === 33 && text.startsWith('<![CDATA[', i)) {
      const close = text.indexOf(']]>', i + 9);
      const end = close < 0 ? n : close;
      if (close < 0) problems.push({ span: { start: i, end: n }, message: 'unterminated CDATA section' });
      addChild({ kind: 'text', value: MStr.source(own(text, i + 9, end), i + 9), span: { start: i, end: Math.min(n, end + 3) } });
      i = close < 0 ? n : close + 3;
      continue;
    }
    if (c1 === 63 /* ? */) {
      const close = text.indexOf('?>', i + 2);
      i = close < 0 ? n : close + 2;
      continue;
    }
    if (c1 === 33) {
      // DOCTYPE and friends: skip to the matching '>' (ignoring an internal subset's brackets).
      let depth = 0;
      let j = i + 2;
      for (; j < n; j++) {
        const c = text.charCodeAt(j);
        if (c === 91) depth++;
        else if (c === 93) depth--;
        else if (c === 62 && depth <= 0) break;
      }
      i = Math.min(n, j + 1);
      continue;
    }
    if (c1 === 47 /* / */) {
      // End tag.
      const nameEnd = readName(i + 2);
      const name = nameEnd > i + 2 ? nameAt(text, i + 2, nameEnd) : '';
      const gt = text.indexOf('>', nameEnd);
      const nextLt = text.indexOf('<', nameEnd);
      const tagEnd = gt < 0 || (nextLt >= 0 && nextLt < gt) ? nameEnd : gt + 1;
      if (tagEnd === nameEnd) problems.push({ span: { start: i, end: nameEnd }, message: `end tag '</${name}' is not closed with '>'` });
      else if (text.slice(nameEnd, gt).trim()) problems.push({ span: { start: nameEnd, end: gt }, message: 'unexpected characters in end tag' });
      const endSpan = { start: i, end: tagEnd };
      let k = stack.length - 1;
      while (k >= 0 && stack[k].name !== name) k--;
      if (k < 0) {
        problems.push({ span: endSpan, message: name ? `end tag '</${name}>' has no matching start tag` : 'malformed end tag' });
      } else {
        while (stack.length - 1 > k) {
          const open = stack.pop()!;
          problems.push({ span: open.nameSpan, message: `element '${open.name}' is not closed` });
          open.e = i;
        }
        const el = stack.pop()!;
        [el.es, el.ee, el.e] = [i, tagEnd, tagEnd];
        // (an array of its length: pushing grew it by half and 16)
        if (el.children.length > 1) el.children = el.children.slice();
        if (stack.length === 1 && childP0 >= 0 && text.charCodeAt(tagEnd - 1) === 62) {
          info.children.set(el.s, { el, problems: problems.slice(childP0), parentName: stack[0].name });
          if (twins && problems.length === childP0 && nsUses === childNs0 && stack[0].nsDecls.size === 0) twins.read(el);
        }
      }
      if (stack.length <= 1) childP0 = -1;
      i = tagEnd;
      continue;
    }
    // Start tag.
    if (stack.length === 1 && prevInfo && change) {
      const oldStart = i < change.start ? i : i > change.newEnd ? i - change.delta : -1;
      const kept = prevInfo.children.get(oldStart);
      if (kept && kept.parentName === stack[0].name && (i < change.start ? kept.el.span.end < change.start : kept.el.span.start > change.oldEnd)) {
        const d = i - kept.el.span.start;
        let el = kept.el;
        let ps = kept.problems;
        const twin = el instanceof DeferredElement ? el.movedTo(d, text, stack[0]) : undefined;
        if (twin) {
          // (a twin unread: one of this parse's, in this text; it has no problems)
          el = twin;
          kept.el.parent = undefined;
        } else if (d === 0) el.parent = stack[0];
        else {
          el = new MovedElement(el, d, stack[0]);
          // (the element moved from stays the source of its attributes and children until they are read: not of its old
          // parent, the previous tree's root, which would keep that whole tree, and so on back through every edit)
          kept.el.parent = undefined;
          ps = ps.map((p) => ({ span: { start: p.span.start + d, end: p.span.end + d }, message: p.message }));
        }
        problems.push(...ps);
        addChild(el);
        info.children.set(el.span.start, { el, problems: ps, parentName: stack[0].name });
        reused.set(el, kept);
        i = el.span.end;
        continue;
      }
    }
    const rootLevel = stack.length === 1;
    const p0 = problems.length;
    const ns0 = nsUses;
    const nameStart = i + 1;
    const nameEnd = readName(nameStart);
    if (nameEnd === nameStart) {
      problems.push({ span: { start: i, end: i + 1 }, message: "'<' must start a tag (write &lt; in text)" });
      addChild({ kind: 'text', value: MStr.source('<', i), span: { start: i, end: i + 1 } });
      i++;
      continue;
    }
    const name = nameAt(text, nameStart, nameEnd);
    const colon = name.indexOf(':');
    if (colon >= 0) nsUses++;
    const el = new Element(name, colon > 0 ? name.slice(0, colon) : undefined, colon > 0 ? name.slice(colon + 1) : name, i, stack[stack.length - 1]);
    let j = nameEnd;
    let closed = false;
    for (;;) {
      while (j < n && isSpace(text.charCodeAt(j))) j++;
      if (j >= n) break;
      const c = text[j];
      if (c === '>') {
        j++;
        closed = true;
        break;
      }
      if (c === '/' && text[j + 1] === '>') {
        j += 2;
        closed = true;
        el.selfClosing = true;
        break;
      }
      if (c === '<') break; // missing '>': recover at the next tag
      const an0 = j;
      const an1 = readName(j);
      if (an1 === an0) {
        problems.push({ span: { start: j, end: j + 1 }, message: `unexpected character '${c}' in tag` });
        j++;
        continue;
      }
      const aname = nameAt(text, an0, an1);
      j = an1;
      while (j < n && isSpace(text.charCodeAt(j))) j++;
      if (text[j] !== '=') {
        problems.push({ span: { start: an0, end: an1 }, message: `attribute '${aname}' has no value` });
        attrs.push(new Attr(aname, '', an0, an1, an1, an1));
        continue;
      }
      j++;
      while (j < n && isSpace(text.charCodeAt(j))) j++;
      const q = text[j];
      let v0: number;
      let v1: number;
      if (q === '"' || q === "'") {
        v0 = j + 1;
        const close = text.indexOf(q, v0);
        const nextLt = text.indexOf('<', v0);
        if (close < 0 || (nextLt >= 0 && nextLt < close)) {
          v1 = close < 0 ? (nextLt < 0 ? n : nextLt) : nextLt;
          problems.push({ span: { start: j, end: v1 }, message: `attribute '${aname}' value is not closed with ${q}` });
          j = v1;
        } else {
          v1 = close;
          j = close + 1;
        }
      } else {
        v0 = j;
        while (j < n && !isSpace(text.charCodeAt(j)) && text[j] !== '>' && !(text[j] === '/' && text[j + 1] === '>')) j++;
        v1 = j;
        problems.push({ span: { start: v0, end: v1 }, message: `attribute '${aname}' value must be quoted` });
      }
      if (attrs.some((a) => a.name === aname)) problems.push({ span: { start: an0, end: an1 }, message: `attribute '${aname}' is repeated` });
      const raw = own(text, v0, v1);
      attrs.push(new Attr(aname, raw.indexOf('&') < 0 ? raw : decodeXmlText(raw, v0, problems), an0, v0, v1, Math.min(n, v1 + (q === '"' || q === "'" ? 1 : 0))));
      if (aname === 'xmlns' || aname.startsWith('xmlns:')) {
        nsUses++;
        if (el.nsDecls === NO_NS_DECLS) el.nsDecls = new Map();
        el.nsDecls.set(aname === 'xmlns' ? '' : aname.slice(6), raw);
      }
    }
    if (!closed) problems.push({ span: el.nameSpan, message: `start tag '<${name}' is not closed with '>'` });
    // (one object for both: spans are never changed in place, only replaced)
    el.te = el.e = j;
    if (attrs.length) {
      el.attrs = attrs.slice();
      attrs.length = 0;
    }
    if (rootLevel && twins && closed && !el.selfClosing && problems.length === p0 && colon < 0 && el.nsDecls === NO_NS_DECLS && stack[0].nsDecls.size === 0) {
      const twin = twins.endOf(el);
      const endTag = twin ? text.lastIndexOf('</', twin.end - 1) : -1;
      if (twin && endTag > j && text.charCodeAt(twin.end - 1) === 62 && text.startsWith(name, endTag + 2)) {
        [el.es, el.ee, el.e] = [endTag, twin.end, twin.end];
        const lazy = new DeferredElement(el, 0, el.parent, twin.note, text);
        addChild(lazy);
        info.children.set(lazy.s, { el: lazy, problems: [], parentName: stack[0].name });
        i = twin.end;
        continue;
      }
    }
    addChild(el);
    if (!el.selfClosing) stack.push(el);
    if (rootLevel) {
      childNs0 = ns0;
      if (!el.selfClosing) childP0 = p0;
      else if (closed) info.children.set(el.s, { el, problems: problems.slice(p0), parentName: stack[0].name });
    }
    i = j;
  }
  while (stack.length) {
    const open = stack.pop()!;
    problems.push({ span: open.nameSpan, message: `element '${open.name}' is not closed` });
    open.e = n;
  }
  const undeclaredPrefixes: XmlDocument['undeclaredPrefixes'] = [];
  const resolveOne = (el: XmlElement, scope: Map<string, string>): Map<string, string> => {
    let s = scope;
    if (el.nsDecls.size) {
      s = new Map(scope);
      for (const [p, u] of el.nsDecls) s.set(p, u);
    }
    el.ns = s.get(el.prefix ?? '');
    if (el.prefix && el.prefix !== 'xml' && el.prefix !== 'xmlns' && !s.has(el.prefix)) {
      undeclaredPrefixes.push({ prefix: el.prefix, span: { start: el.nameSpan.start, end: el.nameSpan.start + el.prefix.length }, element: el });
    }
    return s;
  };
  const resolve = (el: XmlElement, scope: Map<string, string>) => {
    const s = resolveOne(el, scope);
    // (a twin's content has no prefix and no declaration: with no default namespace in scope, nothing to resolve,
    // nor to read for it; one there since (an edit of the root's start tag that kept its length) is resolved)
    if (el instanceof DeferredElement && !s.has('')) return;
    for (const c of el.children) if (c.kind === 'element') resolve(c, s);
  };
  for (const t of tops) {
    const s = resolveOne(t, new Map());
    const sig = JSON.stringify([...s]);
    const kept = new Map<XmlElement, KeptChild>();
    for (const k of info.children.values()) if (k.el.parent === t) kept.set(k.el, k);
    for (const c of t.children) {
      if (c.kind !== 'element') continue;
      const before = reused.get(c);
      // Same subtree, same scope: the same namespaces as last time (already set on it, and on its moved copy).
      // (Undeclared prefixes name elements of the old subtree: a moved one is resolved again.)
      if (before && before.scope === sig && before.undeclared && (before.el === c || before.undeclared.length === 0)) {
        undeclaredPrefixes.push(...before.undeclared);
        const k = kept.get(c);
        if (k) Object.assign(k, { scope: sig, undeclared: before.undeclared });
        continue;
      }
      const u0 = undeclaredPrefixes.length;
      resolve(c, s);
      const k = kept.get(c);
      if (k) Object.assign(k, { scope: sig, undeclared: undeclaredPrefixes.slice(u0) });
    }
  }
  if (tops.length > 1) problems.push({ span: tops[1].nameSpan, message: 'a document has one root element; this is a second one' });
  return { root: tops[0], tops, problems, undeclaredPrefixes, [REUSE]: info } as XmlDocument;
}

/* Helpers for readers. */

export function attr(el: XmlElement, name: string): XmlAttr | undefined {
  return el.attrs.find((a) => a.name === name);
}

export function childElements(el: XmlElement, local?: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) if (c.kind === 'element' && (local === undefined || c.local === local)) out.push(c);
  return out;
}

export function child(el: XmlElement, local: string): XmlElement | undefined {
  for (const c of el.children) if (c.kind === 'element' && c.local === local) return c;
  return undefined;
}

/** Text content, trimmed, with mapping. */
export function textOf(el: XmlElement): MStr {
  const parts: MStr[] = [];
  for (const c of el.children) if (c.kind === 'text') parts.push(c.value);
  const where = el.endTagSpan ? { start: el.endTagSpan.start, end: el.endTagSpan.start } : { start: el.startTagSpan.end, end: el.startTagSpan.end };
  return MStr.concat(parts, where).trim();
}
