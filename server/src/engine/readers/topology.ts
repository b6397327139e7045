/**
 * Reader for memfabric topology files (*.cluster.xml): validates the element
 * tree against topology/schema.ts, expands templates and counts, and turns
 * every node into the QEMU options it stands for. Every generated value maps
 * back to the attribute that produced it, so the QEMU rules report on the
 * topology text itself.
 */
import { Diagnostic, mapDiagnostic } from '../diagnostics';
import { NodeInput } from '../model/build';
import { CxlRegionRequest, EgmDevice } from '../model/model';
import { attr, childElements, textOf, XmlAttr, XmlDocument, XmlElement } from '../syntax/xml';
import { parseShell } from '../syntax/shell';
import { MStr, OffsetMap, Span } from '../text/source';
import { makeDiagnostic } from '../rules/rule';
import { rule as xmlRule } from '../rules/xml-syntax';
import { rule as schemaRule } from '../rules/topology-schema';
import { qemuArgsFromWords, ReadResult } from './qemu-cmdline';
import { SCHEMA } from '../topology/schema';
import { parseQemuSize } from '../text/sizes';
import { keepOn, keptOn } from '../kept';

export interface TopologyNodeInfo {
  name: string;
  /** The <node> element (shared by all nodes a count expands to). */
  element: XmlElement;
  index: number;
}

export interface TopologyInfo {
  clusterName?: string;
  guest?: { kernel?: string; initrd?: string; disk?: string; append?: string; image?: string; 'kernel-version'?: string };
  nodes: TopologyNodeInfo[];
  fabrics: { id: string; size: string; path: string; element: XmlElement }[];
}

type Args = NodeInput['args'];

/** Attribute lookup on a node element with template fallback. */
class Scope {
  constructor(private readonly el: XmlElement, private readonly template?: XmlElement) {}
  get(name: string): XmlAttr | undefined {
    return attr(this.el, name) ?? (this.template ? attr(this.template, name) : undefined);
  }
  children(): XmlElement[] {
    return [...(this.template ? childElements(this.template) : []), ...childElements(this.el)];
  }
}

/** What a <node> element reads from outside itself (the same for every node element of a document). */
export interface TopologyScope {
  source: string;
  baseDir: string;
  fabrics: Map<string, XmlElement>;
  templates: Map<string, XmlElement>;
  topology: TopologyInfo;
}

/** One node a <node> element stands for (one per count). */
export interface NodeExpansion {
  nameM: MStr;
  /** What reading this node reported. */
  diags: Diagnostic[];
  /** Undefined for a name the element itself already used (reading stops there), and in what an analysis keeps (engine/index.ts: the model made of it). */
  input?: NodeInput;
}

/**
 * All a <node> element contributes to the reading of a topology: a pure
 * function of the element, its template and the document's fabrics (so an
 * analysis may keep it while the element is unchanged; see engine/incremental.ts).
 */
export interface NodeElementRead {
  /** Schema findings on the element and its children (validate). */
  validation: Diagnostic[];
  /** Findings before its nodes (unknown template, count too large). */
  pre: Diagnostic[];
  /** count > 4096: no nodes. */
  skip: boolean;
  expansions: NodeExpansion[];
}

export type NodeElementReader = (el: XmlElement, scope: TopologyScope) => NodeElementRead;

/** A node of the document with the element read that made it. */
export interface NodeRef {
  read: NodeElementRead;
  index: number;
}

export function readTopology(
  doc: XmlDocument,
  text: string,
  source: string,
  baseDir: string,
  readNode: NodeElementReader = readNodeElement,
  /** Where a read's offsets are not text offsets (engine/incremental.ts: region offsets), the map to text offsets. */
  placeOf?: (r: NodeElementRead) => OffsetMap | undefined,
): ReadResult & { topology: TopologyInfo; refs: NodeRef[] } {
  const diagnostics: Diagnostic[] = [];
  const topology: TopologyInfo = { nodes: [], fabrics: [] };
  const refs: NodeRef[] = [];
  for (const p of doc.problems) diagnostics.push(makeDiagnostic(xmlRule, { span: p.span, message: p.message }));
  const root = doc.root;
  if (!root || root.local !== 'cluster') {
    diagnostics.push(makeDiagnostic(schemaRule, { span: root?.nameSpan ?? { start: 0, end: 0 }, message: 'a topology file has <cluster name="…"> as its root element' }));
    return { nodes: [], diagnostics, topology, refs };
  }
  const report = (span: Span, message: string) => diagnostics.push(makeDiagnostic(schemaRule, { span, message }));
  topology.clusterName = attr(root, 'name')?.value.text;

  const guestEl = childElements(root, 'guest')[0];
  if (guestEl) {
    topology.guest = {
      kernel: attr(guestEl, 'kernel')?.value.text,
      initrd: attr(guestEl, 'initrd')?.value.text,
      disk: attr(guestEl, 'disk')?.value.text,
      append: attr(guestEl, 'append')?.value.text,
      image: attr(guestEl, 'image')?.value.text,
      'kernel-version': attr(guestEl, 'kernel-version')?.value.text,
    };
  }
  const fabrics = new Map<string, XmlElement>();
  const fabricDiags: [Span, string][] = [];
  for (const f of childElements(root, 'fabric')) {
    const id = attr(f, 'id');
    if (!id) continue;
    if (fabrics.has(id.value.text)) fabricDiags.push([id.valueSpan, `fabric '${id.value.text}' is defined twice`]);
    fabrics.set(id.value.text, f);
    topology.fabrics.push({ id: id.value.text, size: attr(f, 'size')?.value.text ?? '', path: attr(f, 'path')?.value.text ?? '', element: f });
  }
  const templates = new Map<string, XmlElement>();
  for (const t of childElements(root, 'template')) {
    const id = attr(t, 'id');
    if (id) templates.set(id.value.text, t);
  }
  const scope: TopologyScope = { source, baseDir, fabrics, templates, topology };
  const nodeEls = childElements(root, 'node');
  const reads = new Map<XmlElement, NodeElementRead>();
  for (const el of nodeEls) reads.set(el, readNode(el, scope));

  // The order of a reading from scratch: schema findings (tree order), fabrics, then node by node.
  const take = (ds: Diagnostic[], r: NodeElementRead) => {
    const place = ds.length ? placeOf?.(r) : undefined;
    for (const d of ds) diagnostics.push(place ? mapDiagnostic(d, place) : d);
  };
  validate(root, report, (el) => {
    const r = reads.get(el);
    if (r) take(r.validation, r);
    else for (const [sp, m] of validated(el)) report(sp, m);
  });
  for (const [sp, m] of fabricDiags) report(sp, m);

  const nodes: NodeInput[] = [];
  const names = new Set<string>();
  for (const el of nodeEls) {
    const r = reads.get(el)!;
    take(r.pre, r);
    if (r.skip) continue;
    for (let i = 0; i < r.expansions.length; i++) {
      const x = r.expansions[i];
      if (names.has(x.nameM.text)) {
        const nameA = attr(el, 'name');
        const place = placeOf?.(r);
        report((place ? x.nameM.mapOffsets(place) : x.nameM).span(), `node name '${x.nameM.text}' is used twice${nodeCount(el) > 1 && !/\{[ni]/.test(nameA?.value.text ?? '') ? ': a node with count needs {n} in its name' : ''}`);
        break;
      }
      names.add(x.nameM.text);
      topology.nodes.push({ name: x.nameM.text, element: el, index: i });
      take(x.diags, r);
      // (an analysis keeps no inputs, only the models made of them: engine/index.ts)
      if (x.input) nodes.push(x.input);
      refs.push({ read: r, index: i });
    }
  }
  return { nodes, diagnostics, topology, refs };
}

function nodeCount(el: XmlElement): number {
  const countA = attr(el, 'count');
  return countA && /^\d+$/.test(countA.value.text) ? Number(countA.value.text) : 1;
}

/** Read one <node> element: its schema findings and every node it stands for. */
export function readNodeElement(el: XmlElement, scope: TopologyScope): NodeElementRead {
  const validation: Diagnostic[] = [];
  validate(el, (span, message) => validation.push(makeDiagnostic(schemaRule, { span, message })));
  const pre: Diagnostic[] = [];
  const tAttr = attr(el, 'template');
  const template = tAttr ? scope.templates.get(tAttr.value.text) : undefined;
  if (tAttr && !template) pre.push(makeDiagnostic(schemaRule, { span: tAttr.valueSpan, message: `no <template id="${tAttr.value.text}"> in this cluster` }));
  const nodeScope = new Scope(el, template);
  const count = nodeCount(el);
  const countA = attr(el, 'count');
  if (count > 4096) {
    pre.push(makeDiagnostic(schemaRule, { span: countA!.valueSpan, message: `count ${count} is more than the 4096 nodes memfabric expands` }));
    return { validation, pre, skip: true, expansions: [] };
  }
  const nameA = attr(el, 'name');
  const expansions: NodeExpansion[] = [];
  const own = new Set<string>();
  for (let i = 0; i < count; i++) {
    const vars = { i, n: i + 1 };
    const nameM = nameA ? subst(nameA.value, vars) : MStr.synthetic(`node${i + 1}`, el.nameSpan);
    if (own.has(nameM.text)) {
      expansions.push({ nameM, diags: [] });
      break;
    }
    own.add(nameM.text);
    const diags: Diagnostic[] = [];
    const report = (span: Span, message: string) => diags.push(makeDiagnostic(schemaRule, { span, message }));
    const input = buildNodeInput(nodeScope, el, nameM, vars, scope.fabrics, scope.topology, scope.source, scope.baseDir, report, diags);
    expansions.push({ nameM, diags, input });
  }
  return { validation, pre, skip: false, expansions };
}

/** Replace {n}, {n:02}, {i} in an attribute value, keeping the mapping. */
export function subst(m: MStr, vars: { i: number; n: number }): MStr {
  const re = /\{([ni])(?::0?(\d+))?\}/g;
  if (!re.test(m.text)) return m;
  re.lastIndex = 0;
  const parts: MStr[] = [];
  let from = 0;
  for (let r = re.exec(m.text); r; r = re.exec(m.text)) {
    parts.push(m.slice(from, r.index));
    const v = String(vars[r[1] as 'i' | 'n']).padStart(r[2] ? Number(r[2]) : 0, '0');
    parts.push(MStr.synthetic(v, m.span(r.index, r.index + r[0].length)));
    from = r.index + r[0].length;
  }
  parts.push(m.slice(from));
  return MStr.concat(parts, m.span(0, 0));
}

/**
 * The schema findings of an element under the root other than a <node>: kept
 * per element (the parser hands back the same element object only for the
 * same text at the same place), so a template or a fabric is not validated
 * again on every change elsewhere.
 */
const VALIDATED = Symbol('validated');
function validated(el: XmlElement): [Span, string][] {
  let found = keptOn<[Span, string][]>(el, VALIDATED);
  if (!found) {
    const list: [Span, string][] = [];
    validate(el, (sp, m) => list.push([sp, m]));
    found = keepOn(el, VALIDATED, list);
  }
  return found;
}

/** Check el and its subtree against the schema; with child, the children of el go to it instead (once they are allowed there). */
function validate(el: XmlElement, report: (s: Span, m: string) => void, child?: (el: XmlElement) => void) {
  const spec = SCHEMA[el.local];
  if (!spec) return;
  const obj: Record<string, string> = {};
  for (const a of el.attrs) if (!a.name.startsWith('xmlns:')) obj[a.name] = a.value.text;
  const r = spec.attrs.safeParse(obj);
  if (!r.success) {
    for (const issue of r.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) {
          const a = attr(el, k)!;
          report(a.nameSpan, `<${el.local}> has no attribute '${k}'; it takes ${Object.keys(spec.attrs.shape).filter((x) => x !== 'xmlns').join(', ') || 'none'}`);
        }
        continue;
      }
      const key = String(issue.path[0] ?? '');
      const a = attr(el, key);
      if (!a) report(el.nameSpan, `<${el.local}> needs the attribute '${key}'`);
      else report(a.valueSpan.start === a.valueSpan.end ? a.span : a.valueSpan, `${el.local} ${key}: ${issue.message === 'Required' ? 'required' : issue.message}`);
    }
  }
  for (const c of el.children) {
    if (c.kind === 'text') {
      if (!spec.text && c.value.text.trim()) report(c.value.trim().span(), `<${el.local}> holds no text`);
      continue;
    }
    if (!spec.children.includes(c.local)) {
      report(c.nameSpan, `<${c.local}> is not allowed in <${el.local}>${spec.children.length ? `; it may hold ${spec.children.map((x) => `<${x}>`).join(', ')}` : ''}`);
      continue;
    }
    if (child) child(c);
    else validate(c, report);
  }
}

function buildNodeInput(
  scope: Scope,
  el: XmlElement,
  nameM: MStr,
  vars: { i: number; n: number },
  fabrics: Map<string, XmlElement>,
  topology: TopologyInfo,
  source: string,
  baseDir: string,
  report: (s: Span, m: string) => void,
  diagnostics: Diagnostic[],
): NodeInput {
  const args: Args = [];
  const at = el.nameSpan;
  const S = (t: string, where: Span = at) => MStr.synthetic(t, where);
  const A = (name: string, where: Span = at) => {
    const a = scope.get(name);
    return a ? subst(a.value, vars) : undefined;
  };
  const push = (name: string, where: Span, ...parts: (string | MStr | undefined)[]) => {
    const v = MStr.concat(parts.filter((p): p is string | MStr => p !== undefined).map((p) => (typeof p === 'string' ? S(p, where) : p)), where);
    args.push({ name, option: S(`-${name}`, where), value: v });
  };
  /** ",key=VALUE" with VALUE mapped to the attribute. */
  const kv = (key: string, v: MStr | undefined, where: Span) => (v ? MStr.concat([S(`,${key}=`, where), key === 'mem-path' ? absolute(v) : v]) : undefined);
  /** A relative host path is relative to the topology file, wherever QEMU runs. */
  const absolute = (p: MStr): MStr => (p.text.startsWith('/') ? p : MStr.concat([S(`${baseDir.replace(/\/+$/, '')}/`, p.span()), p]));

  const children = scope.children();
  const cxlEls = children.filter((c) => c.local === 'cxl');
  const machineA = scope.get('machine');
  const machineM = machineA ? machineA.value : S('q35');
  const base = machineM.text.includes('q35') ? 'q35' : 'pc';
  const rootBus = base === 'q35' ? 'pcie.0' : 'pci.0';
  push('machine', machineA?.valueSpan ?? at, machineM, cxlEls.length ? S(',cxl=on', cxlEls[0].nameSpan) : undefined);

  const mem = A('memory');
  if (mem || scope.get('maxmem') || scope.get('slots')) {
    const parts: (string | MStr)[] = [];
    parts.push(mem ? MStr.concat([S('size='), mem]) : S('size=1G'));
    const mx = A('maxmem');
    if (mx) parts.push(S(',maxmem='), mx);
    const sl = A('slots');
    if (sl) parts.push(S(',slots='), sl);
    push('m', (scope.get('memory') ?? scope.get('maxmem') ?? scope.get('slots'))!.valueSpan, ...parts);
  } else push('m', at, 'size=1G');
  const cpus = A('cpus');
  push('smp', cpus?.span() ?? at, cpus ?? S('1'));
  const pb = A('phys-bits');
  if (pb) push('cpu', pb.span(), 'qemu64,phys-bits=', pb);

  const egm: EgmDevice[] = [];
  const cxlRegions: CxlRegionRequest[] = [];
  const appendParts: MStr[] = [];
  let slotCounter = 0;
  let fmwIndex = 0;
  /** Every window of the node goes into one -machine option: QEMU refuses cxl-fmw.* split over two (rules/cxl-fmw-split.ts). */
  const fmwParts: (string | MStr)[] = [];
  let fmwWhere: Span | undefined;
  let snCounter = 0;
  const usedSlots = new Set<string>();
  let hbIndex = 0;

  for (const c of children) {
    const cat = c.nameSpan;
    const ca = (n: string) => {
      const a = attr(c, n);
      return a ? subst(a.value, vars) : undefined;
    };
    switch (c.local) {
      case 'attach': {
        const fid = attr(c, 'fabric');
        const f = fid && fabrics.get(fid.value.text);
        if (!fid) break;
        if (!f) {
          report(fid.valueSpan, `no <fabric id="${fid.value.text}"> in this cluster${fabrics.size ? ` (fabrics: ${[...fabrics.keys()].join(', ')})` : ''}`);
          break;
        }
        const fa = (n: string) => attr(f, n)?.value;
        push('object', cat, `memory-backend-file,id=`, fid.value, kv('mem-path', fa('path'), f.nameSpan), kv('size', fa('size'), f.nameSpan), S(',share=on', f.nameSpan));
        push('device', cat, `ivshmem-plain,id=${fid.value.text}-shm,memdev=`, fid.value, ',bus=', ca('bus') ?? S(rootBus), kv('master', fa('master'), f.nameSpan));
        break;
      }
      case 'numa': {
        for (const cell of childElements(c, 'cell')) {
          const ce = (n: string) => {
            const a = attr(cell, n);
            return a ? subst(a.value, vars) : undefined;
          };
          const cid = ce('id')?.text ?? '0';
          const path = ce('path');
          const where = cell.nameSpan;
          if (path) push('object', where, `memory-backend-file,id=numa${cid}`, kv('mem-path', path, where), kv('size', ce('size'), where), kv('align', ce('align'), where), kv('share', ce('share'), where));
          else push('object', where, `memory-backend-ram,id=numa${cid}`, kv('size', ce('size'), where));
          push('numa', where, `node,nodeid=`, ce('id') ?? S('0'), kv('cpus', ce('cpus'), where), `,memdev=numa${cid}`);
        }
        break;
      }
      case 'backend': {
        const t = ca('type')?.text ?? (ca('path') ? 'file' : 'ram');
        push('object', cat, `memory-backend-${t},id=`, ca('id'), kv('mem-path', ca('path'), cat), kv('size', ca('size'), cat), kv('share', ca('share'), cat), kv('align', ca('align'), cat), kv('pmem', ca('pmem'), cat), kv('prealloc', ca('prealloc'), cat), kv('discard-data', ca('discard-data'), cat));
        break;
      }
      case 'cxl': {
        const windows = childElements(c, 'window');
        for (const hb of childElements(c, 'host-bridge')) {
          const hbA = (n: string) => {
            const a = attr(hb, n);
            return a ? subst(a.value, vars) : undefined;
          };
          const hbId = hbA('id') ?? S(`cxl.${hbIndex + 1}`, hb.nameSpan);
          const busNr = hbA('bus-nr') ?? S(String(12 + 32 * hbIndex), hb.nameSpan);
          hbIndex++;
          push('device', hb.nameSpan, 'pxb-cxl,bus_nr=', busNr, `,bus=${rootBus},id=`, hbId);
          childElements(hb, 'root-port').forEach((rp, rpIdx) => {
            const rpA = (n: string) => {
              const a = attr(rp, n);
              return a ? subst(a.value, vars) : undefined;
            };
            const rpId = rpA('id') ?? S(`${hbId.text}.rp${rpIdx}`, rp.nameSpan);
            const slotParts = slotOf(rpA('chassis'), rpA('slot'), rp.nameSpan);
            push('device', rp.nameSpan, 'cxl-rp,port=', rpA('port') ?? S(String(rpIdx), rp.nameSpan), ',bus=', hbId, ',id=', rpId, ...slotParts);
            for (const sub of childElements(rp)) {
              if (sub.local === 'type3') type3(sub, rpId);
              else if (sub.local === 'switch') {
                const swA = (n: string) => {
                  const a = attr(sub, n);
                  return a ? subst(a.value, vars) : undefined;
                };
                const swId = swA('id') ?? S(`${rpId.text}.sw`, sub.nameSpan);
                push('device', sub.nameSpan, 'cxl-upstream,bus=', rpId, ',id=', swId);
                childElements(sub, 'downstream').forEach((ds, dsIdx) => {
                  const dsA = (n: string) => {
                    const a = attr(ds, n);
                    return a ? subst(a.value, vars) : undefined;
                  };
                  const dsId = dsA('id') ?? S(`${swId.text}.dsp${dsIdx}`, ds.nameSpan);
                  push('device', ds.nameSpan, 'cxl-downstream,port=', dsA('port') ?? S(String(dsIdx), ds.nameSpan), ',bus=', swId, ',id=', dsId, ...slotOf(dsA('chassis'), dsA('slot'), ds.nameSpan));
                  for (const t3 of childElements(ds, 'type3')) type3(t3, dsId);
                });
              }
            }
          });
        }
        windows.forEach((w) => {
          const wA = (n: string) => {
            const a = attr(w, n);
            return a ? subst(a.value, vars) : undefined;
          };
          const k = fmwIndex++;
          const parts: (string | MStr)[] = [];
          const targets = wA('targets');
          if (targets) {
            let j = 0;
            const t = targets.text;
            const re = /\S+/g;
            for (let r = re.exec(t); r; r = re.exec(t)) {
              parts.push(S(`${parts.length ? ',' : ''}cxl-fmw.${k}.targets.${j++}=`, w.nameSpan), targets.slice(r.index, r.index + r[0].length));
            }
          }
          const sz = wA('size');
          if (sz) parts.push(S(`${parts.length ? ',' : ''}cxl-fmw.${k}.size=`, w.nameSpan), sz);
          const g = wA('granularity');
          if (g) parts.push(S(`${parts.length ? ',' : ''}cxl-fmw.${k}.interleave-granularity=`, w.nameSpan), g);
          const region = wA('region');
          if (region) cxlRegions.push({ window: k, windowSpan: w.nameSpan, type: region, ...(wA('dax') ? { dax: wA('dax') } : {}) });
          if (!parts.length) return;
          if (fmwParts.length) fmwParts.push(S(',', w.nameSpan));
          fmwParts.push(...parts);
          fmwWhere ??= w.nameSpan;
        });
        break;
      }
      case 'spm': {
        const start = ca('start');
        const size = ca('size');
        if (!start || !size) break;
        const st = parseQemuSize(start.text);
        const sz = parseQemuSize(size.text);
        if (!st.ok || !sz.ok) {
          report((st.ok ? size : start).span(), `spm ${st.ok ? 'size' : 'start'} '${(st.ok ? size : start).text}' is not a size (e.g. 512M, 0x140000000)`);
          break;
        }
        appendParts.push(MStr.concat([S('memmap=', cat), MStr.synthetic(`0x${sz.value.toString(16)}`, size.span()), S('%', cat), MStr.synthetic(`0x${st.value.toString(16)}`, start.span()), S('-1+0xefffffff', cat)]));
        break;
      }
      case 'egm': {
        const idM = ca('id')!;
        if (!idM) break;
        push('object', cat, 'memory-backend-file,id=', MStr.concat([idM, S('-mem', cat)]), kv('mem-path', ca('path'), cat), kv('size', ca('size'), cat), ',share=on,prealloc=on');
        egm.push({ id: idM, pciDev: ca('pci-dev'), numaNode: ca('numa-node'), m: S(c.name, cat) });
        break;
      }
      case 'hostdev': {
        push('device', cat, 'vfio-pci,host=', ca('host'), ',id=', ca('id'));
        break;
      }
      case 'append': {
        appendParts.push(textOf(c));
        break;
      }
      case 'qemu': {
        const t = textOf(c);
        const sh = parseShell(t.text);
        // Re-map the shell words of the raw text onto the document.
        const words: MStr[] = sh.commands.flatMap((cmd) => cmd.words.map((w) => remap(w, t)));
        args.push(...qemuArgsFromWords(words, diagnostics));
        break;
      }
    }
  }
  if (fmwWhere) push('machine', fmwWhere, ...fmwParts);
  const guestAppend = topology.guest?.append;
  if (appendParts.length || guestAppend) {
    const parts: MStr[] = guestAppend ? [S(guestAppend)] : [];
    for (const p of appendParts) {
      if (parts.length) parts.push(S(' '));
      parts.push(p);
    }
    push('append', at, ...parts);
  }
  const host = A('host');
  // A region is committed only by a guest that does not see the hypervisor CPUID bit (Linux 6.2 and later:
  // rules/cxl-region-hypervisor.ts): without a -cpu of the user's, the node gets one without it.
  if (cxlRegions.length && !args.some((a) => a.name === 'cpu')) push('cpu', cxlRegions[0].windowSpan, 'qemu64,-hypervisor');
  const g = topology.guest;
  const guestKernel = g?.image === 'none' || g?.kernel ? undefined : g?.['kernel-version'] ?? 'default';
  return {
    source, name: nameM.text, nameSpan: nameM.span(), kind: 'topology', baseDir, args, egm,
    ...(host ? { host } : {}),
    ...(g?.disk ? { bootDisk: true } : {}),
    ...(cxlRegions.length ? { cxlRegions } : {}),
    ...(guestKernel ? { guestKernel } : {}),
  };

  function slotOf(chassis: MStr | undefined, slot: MStr | undefined, where: Span): (string | MStr)[] {
    if (chassis || slot) {
      usedSlots.add(`${chassis?.text ?? '0'}/${slot?.text ?? '0'}`);
      return [kv('chassis', chassis ?? S('0', where), where)!, kv('slot', slot ?? S('0', where), where)!];
    }
    // Automatic: chassis 0, the next free slot from 1 (slot 0 stays free for users' ports).
    let s: string;
    do s = String(++slotCounter);
    while (usedSlots.has(`0/${s}`));
    usedSlots.add(`0/${s}`);
    return [S(`,chassis=0,slot=${s}`, where)];
  }

  function type3(t3: XmlElement, bus: MStr) {
    const tA = (n: string) => {
      const a = attr(t3, n);
      return a ? subst(a.value, vars) : undefined;
    };
    const w = t3.nameSpan;
    const id = tA('id') ?? S(`${bus.text}.mem`, w);
    const path = tA('path');
    const volatile = tA('kind')?.text === 'volatile';
    const mem = MStr.concat([id, S('-mem', w)]);
    // Static capacity: size (a device may have dynamic capacity only).
    const size = tA('size');
    const dcSize = tA('dc-size');
    const staticCap = !!size || !dcSize;
    if (staticCap && path) push('object', w, 'memory-backend-file,id=', mem, ',share=on', kv('mem-path', path, w), kv('size', size, w), kv('align', tA('align'), w));
    else if (staticCap) push('object', w, 'memory-backend-ram,id=', mem, kv('size', size, w));
    // Dynamic capacity (QEMU 9.1 and later): volatile-dc-memdev split into num-dc-regions regions.
    const dc = MStr.concat([id, S('-dc', w)]);
    const dcPath = tA('dc-path');
    if (dcSize && dcPath) push('object', w, 'memory-backend-file,id=', dc, ',share=on', kv('mem-path', dcPath, w), kv('size', dcSize, w));
    else if (dcSize) push('object', w, 'memory-backend-ram,id=', dc, kv('size', dcSize, w));
    const dcProps = dcSize ? [',volatile-dc-memdev=', dc, kv('num-dc-regions', tA('dc-regions') ?? S('1', w), w)] : [];
    const lsa = MStr.concat([id, S('-lsa', w)]);
    const lsaPath = tA('lsa-path');
    // A volatile or dynamic-capacity-only device needs no label storage (QEMU asks for it with persistent capacity only).
    const withLsa = (!volatile && staticCap) || !!lsaPath || !!tA('lsa-size');
    const lsaSize = tA('lsa-size') ?? S('256M', w);
    if (withLsa && lsaPath) push('object', w, 'memory-backend-file,id=', lsa, ',share=on', kv('mem-path', lsaPath, w), kv('size', lsaSize, w));
    else if (withLsa) push('object', w, 'memory-backend-ram,id=', lsa, kv('size', lsaSize, w));
    push('device', w, 'cxl-type3,bus=', bus, ...(staticCap ? [volatile ? ',volatile-memdev=' : ',memdev=', mem] : []), ...dcProps, ...(withLsa ? [',lsa=', lsa] : []), ',id=', id, kv('sn', tA('sn') ?? S(`0x${(++snCounter).toString(16)}`, w), w));
  }
}


/** A word of a shell parse over `outer.text` mapped back through `outer`. */
function remap(w: MStr, outer: MStr): MStr {
  const parts: MStr[] = [];
  for (let i = 0; i < w.length; i++) {
    const s = w.span(i, i + 1);
    parts.push(outer.slice(s.start, s.end).text === w.text[i] ? outer.slice(s.start, s.end) : MStr.synthetic(w.text[i], outer.span(s.start, s.end)));
  }
  return MStr.concat(parts, outer.span(0, 0));
}
