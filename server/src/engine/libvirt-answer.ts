/**
 * What libvirt itself said of a domain (host/libvirt.ts asks a running
 * libvirtd: `virsh domxml-to-native qemu-argv`), turned into findings on the
 * domain XML.
 *
 *  - libvirt refuses the domain: its own message, at the element it is about
 *    (rule libvirt-refuses), unless a finding of the offline model already
 *    quotes it.
 *  - libvirt accepts it: the command line it would run is read like any
 *    other QEMU command line and judged by the same rules. A finding the
 *    offline model of the domain did not make is mapped back to the XML it
 *    came from: a <qemu:arg> passed through (character for character), a
 *    device by its alias (ua-NAME, dimm0, ram-node1, pci.2 …), an option by
 *    the element libvirt makes it from (-m: <memory>, -smp: <vcpu> …).
 *
 * Pure: the answer is data handed in, as a probe verdict is.
 */
import { Diagnostic, RelatedInfo } from './diagnostics';
import { attr, child, childElements, parseXml, XmlElement } from './syntax/xml';
import { Span } from './text/source';
import { makeDiagnostic } from './rules/rule';
import { rule as refusesRule } from './rules/libvirt-refuses';
import type { AnalyzedDocument } from './index';
import type { NodeModel } from './model/model';

/**
 * libvirt's command line as a probe can run it: without the parts only a
 * libvirt start provides (the master key file libvirt writes into the domain's
 * directory, its QMP monitor socket, the -S it resumes from). The arguments kept are the same objects,
 * so what QEMU says maps to the same text.
 */
export function probeableNode(node: NodeModel): NodeModel {
  const args = node.args.filter((a) => {
    const v = a.value?.text ?? '';
    if (a.name === 'object' && /"qom-type":"secret"/.test(v) && /"id":"masterKey0"/.test(v)) return false;
    if (a.name === 'chardev' && /(?:^|,)id=charmonitor(?:,|$)/.test(v)) return false;
    if (a.name === 'mon' && /chardev=charmonitor/.test(v)) return false;
    // libvirt starts QEMU paused (-S) and resumes it over QMP; the probe needs the firmware to run.
    if (a.name === 'S') return false;
    return true;
  });
  return { ...node, args };
}

/** libvirt's answer for one domain. */
export type LibvirtAnswer =
  | { ok: true; uri: string; version?: string; argv: string }
  | { ok: false; uri: string; version?: string; error: string };

/** A word of libvirt's shell-quoted command line, with where its characters are. */
interface Word {
  text: string;
  start: number;
  end: number;
  /** Offset in the command line of each character of text (quotes removed). */
  at: number[];
}

/** Split a command line as virCommandToString writes it (words, '…' quoting, '\'' for a quote). */
export function argvWords(line: string): Word[] {
  const words: Word[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i])) i++;
    if (i >= line.length) break;
    const w: Word = { text: '', start: i, end: i, at: [] };
    while (i < line.length && !/\s/.test(line[i])) {
      if (line[i] === "'") {
        i++;
        while (i < line.length && line[i] !== "'") {
          w.text += line[i];
          w.at.push(i++);
        }
        i++;
      } else if (line[i] === '\\' && i + 1 < line.length) {
        w.text += line[i + 1];
        w.at.push(i + 1);
        i += 2;
      } else {
        w.text += line[i];
        w.at.push(i++);
      }
    }
    w.end = i;
    words.push(w);
  }
  return words;
}

/** The domain's syntax tree and the command line's words, read once for all the findings of one answer. */
let read: { domText: string; argv: string; dom: XmlElement | undefined; words: Word[] } | undefined;
function readBoth(domText: string, argv: string) {
  if (!read || read.domText !== domText || read.argv !== argv) read = { domText, argv, dom: parseXml(domText).root, words: argvWords(argv) };
  return read;
}

/** The <qemu:arg> of a pass-through -device of that driver (and id), as domainSpanOf maps it. */
function passThroughDevice(domText: string, argv: string, driver: string, id: string | undefined): ReturnType<typeof domainSpanOf> | undefined {
  const { words } = readBoth(domText, argv);
  for (let i = 1; i < words.length; i++) {
    const w = words[i];
    if (words[i - 1].text !== '-device' || w.text.startsWith('{')) continue;
    const parts = w.text.split(',');
    if (parts[0] !== driver && !parts.includes(`driver=${driver}`)) continue;
    if (id !== undefined && !parts.includes(`id=${id}`)) continue;
    const m = domainSpanOf(domText, argv, { start: w.at[0], end: w.at[w.at.length - 1] + 1 });
    if (m.passedThrough) return m;
  }
  return undefined;
}

/** The element a libvirt device alias or backend id names, if the domain has it. */
function elementOfAlias(dom: XmlElement, id: string): XmlElement | undefined {
  const devices = child(dom, 'devices');
  const all = (el: XmlElement): XmlElement[] => [el, ...childElements(el).flatMap(all)];
  if (id.startsWith('ua-')) {
    return all(dom).find((e) => e.local === 'alias' && attr(e, 'name')?.value.text === id)?.parent;
  }
  if (id === 'pc.ram') return child(dom, 'memory') ?? child(dom, 'currentMemory');
  let m = /^ram-node(\d+)$/.exec(id);
  if (m) {
    const cpu = child(dom, 'cpu');
    const numa = cpu && child(cpu, 'numa');
    return numa && childElements(numa, 'cell').find((c) => attr(c, 'id')?.value.text === m![1]);
  }
  m = /^(?:mem)?(dimm|nvdimm|virtiopmem|virtiomem|epc)(\d+)$/.exec(id);
  if (m && devices) {
    const model = { dimm: 'dimm', nvdimm: 'nvdimm', virtiopmem: 'virtio-pmem', virtiomem: 'virtio-mem', epc: 'sgx-epc' }[m[1]]!;
    const mems = childElements(devices, 'memory').filter((e) => attr(e, 'model')?.value.text === model);
    return mems[Number(m[2])] ?? mems[0];
  }
  m = /^(?:shmmem-)?shmem(\d+)$/.exec(id);
  if (m && devices) return childElements(devices, 'shmem')[Number(m[1])];
  m = /^hostdev(\d+)$/.exec(id);
  if (m && devices) return childElements(devices, 'hostdev')[Number(m[1])];
  m = /^pci\.(\d+)$/.exec(id);
  if (m && devices) return childElements(devices, 'controller').find((c) => attr(c, 'type')?.value.text === 'pci' && attr(c, 'index')?.value.text === m![1]);
  if (/^balloon\d+$/.test(id) && devices) return child(devices, 'memballoon');
  return undefined;
}

/** The element libvirt makes an option from, for options that are not devices. */
function elementOfOption(dom: XmlElement, option: string, value: string, key: string): XmlElement | undefined {
  const os = child(dom, 'os');
  const type = os && child(os, 'type');
  switch (option) {
    case '-m':
      // size= is <memory> (less the memory devices); slots= and maxmem= are <maxMemory>.
      return (key === 'slots' || key === 'maxmem') && child(dom, 'maxMemory') ? child(dom, 'maxMemory') : child(dom, 'memory');
    case '-smp':
      return child(dom, 'vcpu');
    case '-machine':
      return type;
    case '-numa': {
      const cpu = child(dom, 'cpu');
      const numa = cpu && child(cpu, 'numa');
      const id = /nodeid=(\d+)/.exec(value)?.[1];
      return (numa && id !== undefined && childElements(numa, 'cell').find((c) => attr(c, 'id')?.value.text === id)) || numa;
    }
    default:
      return undefined;
  }
}

/** The span to point at for an element: the attribute that holds its value, else its start tag's name. */
function pointAt(el: XmlElement): Span {
  const a = attr(el, 'memory') ?? (el.local === 'alias' ? attr(el, 'name') : undefined);
  if (a) return a.valueSpan;
  return el.nameSpan;
}

/** The <qemu:arg> values of the domain, in order. */
function passThrough(dom: XmlElement) {
  return childElements(dom)
    .filter((e) => e.local === 'commandline')
    .flatMap((c) => childElements(c, 'arg'))
    .map((a) => attr(a, 'value'))
    .filter((a): a is NonNullable<typeof a> => a !== undefined);
}

/**
 * Maps a span of libvirt's command line to the domain XML: the pass-through
 * argument it is in (same characters), else the element of the device or
 * option the word belongs to, else the domain's name.
 */
export function domainSpanOf(domText: string, argv: string, s: Span): { span: Span; passedThrough: boolean; word?: string } {
  const { dom, words } = readBoth(domText, argv);
  const fallback = (w?: string) => ({ span: dom ? dom.nameSpan : { start: 0, end: 0 }, passedThrough: false, word: w });
  if (!dom) return fallback();
  const wi = words.findIndex((w) => s.start >= w.start && s.start < Math.max(w.end, w.start + 1));
  if (wi < 0) return fallback();
  const word = words[wi];
  // Pass-through arguments: the <qemu:arg> values appear as one run of words, in order.
  const args = passThrough(dom);
  if (args.length) {
    for (let k = 0; k + args.length <= words.length; k++) {
      if (!args.every((a, j) => words[k + j].text === a.value.text)) continue;
      if (wi < k || wi >= k + args.length) break;
      const a = args[wi - k];
      const from = word.at.indexOf(s.start);
      const to = word.at.indexOf(s.end - 1);
      if (from >= 0 && to >= from) return { span: a.value.span(from, to + 1), passedThrough: true, word: word.text };
      return { span: a.valueSpan, passedThrough: true, word: word.text };
    }
  }
  const value = word.text.startsWith('-') ? words[wi + 1]?.text ?? '' : word.text;
  const option = word.text.startsWith('-') ? word.text : words[wi - 1]?.text ?? '';
  let id: string | undefined;
  if (value.startsWith('{')) {
    try {
      id = (JSON.parse(value) as { id?: string }).id;
    } catch {
      /* not JSON after all */
    }
  } else id = /(?:^|,)id=([^,]+)/.exec(value)?.[1];
  // The key=value part of the word the span starts in ("maxmem" in size=…,slots=4,maxmem=…).
  const off = word.at.indexOf(s.start);
  const key = off >= 0 && !word.text.startsWith('{') ? /(?:^|,)([\w.-]+)=[^,]*$/.exec(word.text.slice(0, off + 1))?.[1] ?? '' : '';
  const el = (id && elementOfAlias(dom, id)) || elementOfOption(dom, option, value, key);
  return el ? { span: pointAt(el), passedThrough: false, word: value } : fallback(value);
}

/**
 * Where libvirt's refusal belongs: the element its message is about (by the
 * XPath or the element and attribute names libvirt's messages use), else the
 * domain's name.
 */
export function locateRefusal(dom: XmlElement, message: string): Span {
  const all = (el: XmlElement): XmlElement[] => [el, ...childElements(el).flatMap(all)];
  const els = all(dom);
  // "Invalid value '…' for element or attribute './memory[1]'" and the like.
  const xp = /'\.\/([\w/]+?)(?:\[(\d+)\])?(?:\/@?(\w+))?'/.exec(message);
  if (xp) {
    const parts = xp[1].split('/');
    let cur: XmlElement[] = [dom];
    for (const p of parts) cur = cur.flatMap((e) => childElements(e, p));
    const el = cur[xp[2] ? Number(xp[2]) - 1 : 0] ?? cur[0];
    if (el) return (xp[3] && attr(el, xp[3])?.valueSpan) || pointAt(el);
  }
  // An attribute named in the message, with the value it quotes.
  for (const m of message.matchAll(/'([^']+)'/g)) {
    for (const e of els) for (const a of e.attrs) if (a.value.text === m[1] && message.includes(a.name)) return a.valueSpan;
  }
  const byWord: [RegExp, (e: XmlElement) => boolean][] = [
    [/memAccess/i, (e) => e.local === 'cell' && !!attr(e, 'memAccess')],
    [/memnode|numatune/i, (e) => e.local === 'numatune'],
    [/hugepage/i, (e) => e.local === 'hugepages'],
    [/memory device|nvdimm|dimm|virtio-mem|virtio-pmem/i, (e) => e.local === 'memory' && e.parent?.local === 'devices'],
    [/maxMemory|slots/i, (e) => e.local === 'maxMemory'],
    [/NUMA|cell/i, (e) => e.local === 'numa'],
    [/shmem|ivshmem/i, (e) => e.local === 'shmem'],
    [/hostdev|PCI passthrough|vfio/i, (e) => e.local === 'hostdev'],
    [/controller|pcie-root-port|pci-root|pcie-root/i, (e) => e.local === 'controller'],
    [/emulator|binary/i, (e) => e.local === 'emulator'],
    [/machine|arch/i, (e) => e.local === 'type' && e.parent?.local === 'os'],
    [/memory/i, (e) => e.local === 'memory' && e.parent === dom],
    [/vcpu|cpu/i, (e) => e.local === 'vcpu'],
  ];
  for (const [re, is] of byWord) {
    if (!re.test(message)) continue;
    const el = els.find(is);
    if (el) return (el.local === 'cell' && attr(el, 'memAccess')?.valueSpan) || pointAt(el);
  }
  return dom.nameSpan;
}

/** libvirt's message, without the category libvirt puts first ("XML error: " …). */
export function libvirtMessageCore(error: string): string {
  return error.replace(/^(internal error|XML error|invalid argument|unsupported configuration|operation failed|Requested operation is not valid|argument unsupported|configuration unsupported): /, '').trim();
}

/**
 * The findings libvirt's answer adds to the offline analysis of a domain
 * (`offline`): in the domain's offsets, none the offline model already made.
 * `argvAnalysis` is the analysis of libvirt's command line (answer.argv) by the
 * same engine and QEMU profile.
 */
export function libvirtFindings(domText: string, offline: AnalyzedDocument, answer: LibvirtAnswer, argvAnalysis?: AnalyzedDocument): Diagnostic[] {
  const dom = parseXml(domText).root;
  if (!dom || dom.local !== 'domain') return [];
  const who = `libvirt${answer.version ? ` ${answer.version}` : ''} (${answer.uri})`;
  if (!answer.ok) {
    const core = libvirtMessageCore(answer.error);
    if (offline.diagnostics.some((d) => d.severity === 'error' && d.message.includes(core))) return [];
    return [
      makeDiagnostic(refusesRule, {
        span: locateRefusal(dom, core),
        message: `${who} refuses this domain: "${answer.error}"`,
      }),
    ];
  }
  if (!argvAnalysis) return [];
  const known = new Set(offline.diagnostics.map((d) => d.code));
  const out: Diagnostic[] = [];
  for (const d of argvAnalysis.diagnostics) {
    if (d.severity !== 'error' && d.severity !== 'warning') continue;
    if (known.has(d.code)) continue;
    // QEMU's words (the quoted part) already in an offline error: the same finding, said at the XML already.
    const quoted = /"([^"]{12,})"/.exec(d.message)?.[1];
    if (quoted && offline.diagnostics.some((o) => o.severity === 'error' && o.message.includes(quoted))) continue;
    let at = domainSpanOf(domText, answer.argv, d.span);
    const related: RelatedInfo[] = [];
    // QEMU's "slot N function 0 not available for DRIVER, in use by OTHER,id=ID": the finding sits on the
    // device libvirt placed; the cause is the pass-through device that took its slot first.
    const collided = /not available for ([\w.-]+), in use by ([\w.-]+),id=([^"\s]+)/.exec(d.message);
    if (collided && !at.passedThrough) {
      const culprit = passThroughDevice(domText, answer.argv, collided[2], collided[3] === '(null)' ? undefined : collided[3]);
      if (culprit) {
        related.push({ span: at.span, message: `libvirt's own ${collided[1]} (${excerpt(at.word)})` });
        at = culprit;
      }
    }
    for (const r of d.related ?? []) {
      if (r.source) continue;
      const rat = domainSpanOf(domText, answer.argv, r.span);
      related.push({ span: rat.span, message: rat.passedThrough ? r.message : `${r.message} (libvirt's own: ${excerpt(rat.word)})` });
    }
    const how = at.passedThrough ? 'passed through <qemu:commandline>' : `libvirt generates ${excerpt(at.word)}`;
    out.push({ code: d.code, severity: d.severity, span: at.span, message: `${d.message} (on the command line ${who} makes of this domain; ${how})`, ...(related.length ? { related } : {}) });
  }
  return out;
}

function excerpt(word: string | undefined): string {
  if (!word) return 'it';
  return word.length > 120 ? `${word.slice(0, 117)}…` : word;
}
