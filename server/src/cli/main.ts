/**
 * The memfabric command line: a stable contract for scripts and CI.
 *   memfabric check [--format text|json] [--placement] FILE...
 *   memfabric plan [--format json|argv|libvirt] [--node NAME] FILE
 * Exit status: check 1 if any error-severity diagnostic; 2 for usage or I/O errors.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { addVerdicts, analyzeDocuments, AnalyzedDocument, remoteHostUri, selectNodes } from '../engine/index';
import { Diagnostic } from '../engine/diagnostics';
import { LineMap } from '../engine/text/source';
import { nodeArgv, shellQuote } from '../engine/emit/argv';
import { nodeFiles } from '../engine/emit/files';
import { regionPlans } from '../engine/model/cxl-regions';
import { describeRegion } from '../runtime/cxl-regions';
import { DomainRuntime, nodeLibvirtXml } from '../engine/emit/libvirt';
import { nodeHost } from '../host/probe';
import { archProfile, userProfile } from '../host/qemu-profile';
import { QemuProfile, QemuProfiles, layoutQemu, profileLabel } from '../engine/qemu/profile';
import type { Judged } from '../runtime/judge';
import type { NodeModel } from '../engine/model/model';
import { IomemEntry, NodeLayout } from '../engine/layout/index';
import { layoutReport } from '../engine/layout/report';
import { human } from '../engine/text/sizes';
import type { ClusterSpec, UserGuest } from '../runtime/cluster';
import { attr, childElements } from '../engine/syntax/xml';

export class UsageError extends Error {}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const USAGE = `usage:
  memfabric check [--format text|json] [--placement] [--probe] [--libvirt [--connect URI]] FILE...
  memfabric plan [--format json|argv|libvirt] [--node NAME] FILE
  memfabric layout [--format text|json] [--node NAME] [--no-agent] [--probe] FILE
  memfabric boot [--format text|json] [--node NAME] [--timeout S] [--backend qemu|libvirt [--connect URI]] FILE
  memfabric status [--format text|json] FILE
  memfabric exec FILE NODE -- CMD ARGS...
  memfabric stop FILE
  memfabric verify [--format text|json] FILE
  memfabric view [--format text|json] FILE NODE lspci|iomem|cxl|daxctl
  memfabric console FILE NODE
  memfabric cxl region FILE NODE [--window K] [--format text|json]
  memfabric cxl events FILE NODE [--since N] [--format text|json]
  memfabric cxl poison|error|event|dc [KIND] FILE NODE DEVICE [options] [--format text|json]
      (poison --start A --length L; error uncorrectable|correctable --type T;
       event general-media|dram|memory-module [--dpa A]; dc add|release --extent START:LEN;
       see docs/cxl.md)
  memfabric image [--kernel 6.1|6.12] [--format text|json]
  memfabric lsp --stdio
environment: MEMFABRIC_QEMU (QEMU binary), MEMFABRIC_ACCEL (auto|kvm|tcg),
  MEMFABRIC_BACKEND (qemu|libvirt), MEMFABRIC_LIBVIRT_URI (libvirt connection),
  MEMFABRIC_IMAGE_DIR (guest image cache), MEMFABRIC_RUN_DIR (run directories)
--probe: run the QEMU judged for on each distinct node shape (firmware, no guest,
  scratch stand-ins for backing files) and report what it says
--libvirt: ask a running libvirtd for each domain's QEMU command line (virsh
  domxml-to-native; nothing is defined or started), report its refusals and judge
  its command line; --connect URI (else MEMFABRIC_LIBVIRT_URI, LIBVIRT_DEFAULT_URI,
  qemu:///system, qemu:///session)`;

/** Options with a value (choices, or null for any) and boolean switches. */
function parseFlags(args: string[], allowed: Record<string, string[] | null | 'switch'>): { flags: Record<string, string>; rest: string[] } {
  const flags: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      rest.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const [k, inline] = a.slice(2).split(/=(.*)/s, 2);
      if (!(k in allowed)) throw new UsageError(`unknown option --${k}`);
      if (allowed[k] === 'switch') {
        flags[k] = 'on';
        continue;
      }
      const v = inline ?? args[++i];
      if (v === undefined) throw new UsageError(`--${k} needs a value`);
      const choices = allowed[k];
      if (Array.isArray(choices) && !choices.includes(v)) throw new UsageError(`--${k} must be one of ${choices.join(', ')}`);
      flags[k] = v;
    } else rest.push(a);
  }
  return { flags, rest };
}

function loadDocs(files: string[]): { text: string; source: string }[] {
  return files.map((f) => {
    const source = resolve(f);
    let text: string;
    try {
      text = readFileSync(source, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return { text, source };
  });
}

function toJsonDiag(d: Diagnostic, lm: LineMap, maps: Map<string, LineMap>) {
  const o: Record<string, unknown> = { range: lm.range(d.span), severity: d.severity, code: d.code, message: d.message };
  if (d.node) o.node = d.node;
  if (d.related?.length) o.related = d.related.map((r) => ({ range: (r.source ? maps.get(r.source) ?? lm : lm).range(r.span), message: r.message, ...(r.source ? { file: r.source } : {}) }));
  if (d.fixes?.length) o.fixes = d.fixes.map((f) => ({ title: f.title, edits: f.edits.map((e) => ({ range: lm.range(e.span), newText: e.newText })) }));
  return o;
}

/**
 * The QEMU to judge for: the profile of the binary the user runs ($MEMFABRIC_QEMU or
 * qemu-system-x86_64 in PATH), cached per binary; a bundled one, said on stderr, where
 * there is none.
 */
async function judgeFor(io: Io): Promise<QemuProfile> {
  const { profile, note } = await userProfile();
  if (note) io.err(`memfabric: note: ${note}\n`);
  return profile;
}

/**
 * The profiles to judge a set of documents with: the user's QEMU for the nodes
 * of its architecture, qemu-system-<arch> (else the bundled profile of that
 * architecture) for the others, e.g. an aarch64 domain. Only asked for when
 * such nodes are there: `analyze` is run again with the map.
 */
async function judgeArches(io: Io, qemu: QemuProfile, nodes: NodeModel[]): Promise<Record<string, QemuProfile> | undefined> {
  const others = [...new Set(nodes.map((n) => n.arch).filter((a) => a !== qemu.arch))].sort();
  if (!others.length) return undefined;
  const map: Record<string, QemuProfile> = { [qemu.arch]: qemu };
  for (const arch of others) {
    const { profile, note } = await archProfile(arch);
    if (note) io.err(`memfabric: note: ${note}\n`);
    map[arch] = profile;
  }
  return map;
}

/** "QEMU 7.2.22, SeaBIOS 1.16.2", and "; aarch64 nodes: QEMU 7.2.22 (aarch64)" when other architectures were judged too. */
function judgedLabel(qemu: QemuProfile, map: Record<string, QemuProfile> | undefined): string {
  const rest = Object.entries(map ?? {}).filter(([a]) => a !== qemu.arch);
  return profileLabel(qemu) + rest.map(([a, p]) => `; ${a} nodes: ${profileLabel(p)}`).join('');
}

/** The profile as `check --format json` reports it. */
function profileJson(q: QemuProfile) {
  return { version: q.version, ...(q.firmware ? { firmware: `${q.firmware.name} ${q.firmware.version}` } : {}), origin: q.origin.kind === 'binary' ? q.origin.path : 'bundled' };
}

export async function check(args: string[], io: Io): Promise<number> {
  const { flags, rest } = parseFlags(args, { format: ['text', 'json'], placement: 'switch', probe: 'switch', libvirt: 'switch', connect: null });
  const information = flags.placement === 'on';
  if (!rest.length) throw new UsageError('check needs at least one FILE');
  if (flags.connect !== undefined && flags.libvirt !== 'on') throw new UsageError('--connect goes with --libvirt');
  const docs = loadDocs(rest);
  const qemu = await judgeFor(io);
  let results = analyzeDocuments(docs, nodeHost, { information, qemu });
  const byArch = await judgeArches(io, qemu, results.flatMap((r) => r.nodes));
  if (byArch) results = analyzeDocuments(docs, nodeHost, { information, qemu: byArch });
  if (flags.probe === 'on') {
    for (const r of results) {
      // The probe runs the user's QEMU: it confirms the nodes of its architecture.
      const own = r.nodes.filter((n) => n.arch === qemu.arch);
      if (!own.length) continue;
      const judged = await probeWith(qemu, own, false, io);
      if (judged) addVerdicts(r, judged);
    }
  }
  const asked = flags.libvirt === 'on' ? await askLibvirt(docs, results, qemu, flags.connect, io, flags.probe === 'on') : undefined;
  const maps = new Map(docs.map((d) => [d.source, new LineMap(d.text)]));
  let errors = 0;
  for (const r of results) errors += r.diagnostics.filter((d) => d.severity === 'error').length;
  const display = new Map(docs.map((d, i) => [d.source, rest[i]]));
  const sorted = (r: AnalyzedDocument) => [...r.diagnostics].sort((a, b) => a.span.start - b.span.start || a.code.localeCompare(b.code));
  if (flags.format === 'json') {
    io.out(
      JSON.stringify({
        qemu: profileJson(qemu),
        ...(asked ? { libvirt: asked } : {}),
        files: results.map((r) => ({ file: display.get(r.source)!, diagnostics: sorted(r).map((d) => toJsonDiag(d, maps.get(r.source)!, maps)) })),
      }, null, 2) + '\n',
    );
  } else {
    let count = 0;
    for (const r of results) {
      const lm = maps.get(r.source)!;
      for (const d of sorted(r)) {
        const p = lm.position(d.span.start);
        io.out(`${display.get(r.source)}:${p.line + 1}:${p.character + 1}: ${d.severity} [${d.code}]${d.node && results.length + r.nodes.length > 2 ? ` (${d.node})` : ''} ${d.message}\n`);
        for (const rel of d.related ?? []) {
          const rp = (rel.source ? maps.get(rel.source) ?? lm : lm).position(rel.span.start);
          io.out(`  ${rel.source ? display.get(rel.source) ?? rel.source : display.get(r.source)}:${rp.line + 1}:${rp.character + 1}: ${rel.message}\n`);
        }
        count++;
      }
    }
    const nodes = results.reduce((a, r) => a + r.nodes.length, 0);
    const lv = asked && 'uri' in asked ? `; domains asked of libvirt ${asked.version ?? ''} at ${asked.uri}` : '';
    io.out(`${count ? `${count} problem(s), ${errors} error(s)` : 'no problems'} in ${results.length} file(s), ${nodes} node(s) (judged for ${judgedLabel(qemu, byArch)}${lv})\n`);
  }
  return errors ? 1 : 0;
}

/**
 * `check --libvirt`: each domain file is asked of a running libvirtd (its
 * refusal, or its command line judged by the same rules); what it adds goes
 * into the file's diagnostics at the XML it came from. Without a libvirt that
 * answers, a note says so and the offline model of libvirt 9.0 stands.
 */
async function askLibvirt(docs: { text: string; source: string }[], results: AnalyzedDocument[], qemu: QemuProfile, connect: string | undefined, io: Io, probe: boolean): Promise<{ uri: string; version?: string } | { none: string }> {
  const { libvirtTarget, libvirtUnreachable, domxmlToNative, isConnectionError, libvirtVersion } = await import('../host/libvirt');
  const { libvirtFindings, probeableNode } = await import('../engine/libvirt-answer');
  const target = libvirtTarget(process.env, connect);
  const offline = 'judged with the offline model of libvirt 9.0 only';
  if ('none' in target) {
    io.err(`memfabric: note: --libvirt: ${target.none}; ${offline}\n`);
    return target;
  }
  const why = await libvirtUnreachable(target.uri);
  if (why) {
    io.err(`memfabric: note: --libvirt: ${target.uri}: ${why}; ${offline}\n`);
    return { none: `${target.uri}: ${why}` };
  }
  for (let i = 0; i < docs.length; i++) {
    const r = results[i];
    if (r.kind !== 'libvirt') continue;
    const answer = await domxmlToNative(docs[i].text, target);
    if (!answer.ok && isConnectionError(answer.error)) {
      io.err(`memfabric: note: --libvirt: ${target.uri}: ${answer.error}; ${offline}\n`);
      continue;
    }
    let argvDoc: AnalyzedDocument | undefined;
    if (answer.ok) {
      // libvirt's command line runs its <emulator>: judge it with that binary's profile.
      const bin = /(?:^|\s)(\/\S*qemu-(?:system-\w+|kvm))\s/.exec(answer.argv)?.[1];
      const prof = bin && !(qemu.origin.kind === 'binary' && qemu.origin.path === bin) ? (await userProfile(process.env, bin)).profile : qemu;
      [argvDoc] = analyzeDocuments([{ text: answer.argv, source: `${docs[i].source}#libvirt-argv`, kind: 'qemu' }], nodeHost, { qemu: prof });
      // --probe: that very command line, run by that QEMU (without libvirt's own plumbing: its master key, its monitor).
      if (probe && argvDoc.nodes.length === 1 && prof.origin.kind === 'binary') {
        const node = probeableNode(argvDoc.nodes[0]);
        const judged = await probeWith(prof, [node], false, io);
        if (judged) addVerdicts(argvDoc, judged);
      }
    }
    r.diagnostics.push(...libvirtFindings(docs[i].text, r, answer, argvDoc));
  }
  return { uri: target.uri, version: await libvirtVersion(target.uri) };
}

/** One FILE, analyzed, and the nodes --node names (all by default). */
function loadNodesSync(cmd: string, rest: string[], node: string | undefined, qemu?: QemuProfiles) {
  if (rest.length !== 1) throw new UsageError(`${cmd} needs exactly one FILE`);
  const [doc] = loadDocs(rest);
  const [r] = analyzeDocuments([doc], nodeHost, { qemu });
  const sel = selectNodes(r, node, rest[0]);
  if ('error' in sel) throw new UsageError(sel.error);
  return { doc, r, nodes: sel.nodes };
}

/** loadNodesSync, judged for the user's QEMU and, for nodes of other architectures, for theirs (judgeArches). */
async function loadNodes(cmd: string, rest: string[], node: string | undefined, qemu: QemuProfile, io: Io) {
  const first = loadNodesSync(cmd, rest, node, qemu);
  const byArch = await judgeArches(io, qemu, first.r.nodes);
  return byArch ? loadNodesSync(cmd, rest, node, byArch) : first;
}

/** The errors that concern these nodes, the first five printed; returns how many there are. */
function reportErrors(cmd: string, file: string, doc: { text: string }, r: AnalyzedDocument, nodes: { name: string }[], io: Io, consequence: string): number {
  const errs = r.diagnostics.filter((d) => d.severity === 'error' && (!d.node || nodes.some((n) => n.name === d.node)));
  if (!errs.length) return 0;
  const lm = new LineMap(doc.text);
  for (const d of errs.slice(0, 5)) {
    const p = lm.position(d.span.start);
    io.err(`${file}:${p.line + 1}:${p.character + 1}: error [${d.code}] ${d.message}\n`);
  }
  io.err(`memfabric ${cmd}: ${errs.length} error(s); ${consequence} (run memfabric check ${file})\n`);
  return errs.length;
}

export async function plan(args: string[], io: Io): Promise<number> {
  const { flags, rest } = parseFlags(args, { format: ['json', 'argv', 'libvirt'], node: null });
  if (rest.length !== 1) throw new UsageError('plan needs exactly one FILE');
  const { doc, r, nodes } = await loadNodes('plan', rest, flags.node, await judgeFor(io), io);
  const errors = reportErrors('plan', rest[0], doc, r, nodes, io, 'the plan would not start');
  const format = flags.format ?? 'json';
  if (format === 'json') {
    // Nodes grouped by the host they run on (host=, a libvirt connection URI; "" = this host).
    const hosts = new Map<string, string[]>();
    for (const n of nodes) hosts.set(n.host?.text ?? '', [...(hosts.get(n.host?.text ?? '') ?? []), n.name]);
    io.out(
      JSON.stringify({
        nodes: nodes.map((n) => ({ name: n.name, ...(n.host ? { host: n.host.text } : {}), argv: nodeArgv(n), files: nodeFiles(n).map((f) => ({ path: f.path, size: '0x' + f.size.toString(16) })) })),
        hosts: [...hosts].map(([uri, ns]) => ({ host: uri || null, nodes: ns })),
      }, null, 2) + '\n',
    );
  } else if (format === 'argv') {
    for (const n of nodes) io.out(`# ${n.name}${n.host ? ` on ${n.host.text}` : ''}\n${shellQuote(nodeArgv(n))}\n`);
  } else {
    for (const n of nodes) io.out(nodeLibvirtXml(n));
  }
  return errors ? 1 : 0;
}

function layoutText(l: NodeLayout): string {
  const all: { e: IomemEntry; depth: number }[] = [];
  const walk = (es: IomemEntry[], depth: number) => {
    for (const e of es) {
      all.push({ e, depth });
      walk(e.children ?? [], depth + 1);
    }
  };
  walk(l.iomem, 0);
  const width = Math.max(8, ...all.map(({ e }) => e.end.toString(16).length), ...l.bars.map((b) => (b.start + b.size).toString(16).length));
  const w = (v: bigint) => v.toString(16).padStart(width, '0');
  const range = (s: bigint, e: bigint) => `${w(s)}-${w(e)}`;
  const lines = [`# ${l.name}: guest physical memory map (QEMU ${l.qemuVersion}, SeaBIOS ${l.firmware}, Linux), from 1 MiB up`, ''];
  for (const { e, depth } of all) lines.push(`${'  '.repeat(depth)}${range(e.start, e.end)} : ${e.name.padEnd(34 - depth * 2)} ${human(e.end - e.start + 1n)}`);
  lines.push('', 'PCI memory BARs:');
  for (const b of l.bars) {
    lines.push(`  ${b.bdf} BAR${b.bar}  ${range(b.start, b.start + b.size - 1n)}  ${`${b.bits}-bit${b.prefetchable ? ' pref' : ''}`.padEnd(11)} ${human(b.size).padStart(9)}  ${b.device}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Runs the QEMU judged for on every distinct node shape (runtime/judge.ts);
 * undefined, said on stderr, when there is none to run.
 */
async function probeWith(qemu: QemuProfile, nodes: NodeModel[], agent: boolean, io: Io): Promise<Judged[] | undefined> {
  const { judgeWithQemu } = await import('../runtime/judge');
  const { probeStats } = await import('../runtime/probe');
  const runs = probeStats.runs;
  const started = Date.now();
  try {
    const judged = await judgeWithQemu(nodes, qemu, { agent });
    io.err(`memfabric: probed ${nodes.length} node(s) with QEMU ${qemu.version}: ${probeStats.runs - runs} run(s), ${Date.now() - started} ms\n`);
    return judged;
  } catch (e) {
    io.err(`memfabric: --probe: ${(e as Error).message}\n`);
    return undefined;
  }
}

function probeText(j: Judged): string {
  const v = j.verdict;
  if (v.refused) return `# ${j.node.name}: QEMU ${v.qemu} refuses this node: "${v.refused.message}"\n`;
  if (v.firmwareStop) return `# ${j.node.name}: QEMU ${v.qemu} starts, but its firmware stops: "${v.firmwareStop}"\n`;
  if (v.inconclusive) return `# ${j.node.name}: QEMU ${v.qemu} could not be asked: ${v.inconclusive}\n`;
  if (!v.disagreements.length) return `# ${j.node.name}: confirmed by QEMU ${v.qemu} (${v.firmware ?? 'its firmware'}): E820, BARs, 64-bit hole and CXL windows as predicted\n`;
  return `# ${j.node.name}: QEMU ${v.qemu} disagrees with the model (QEMU is right; its E820 table is shown in --format json):\n${v.disagreements.map((d) => `#   ${d}\n`).join('')}`;
}

export async function layout(args: string[], io: Io): Promise<number> {
  const { flags, rest } = parseFlags(args, { format: ['text', 'json'], node: null, 'no-agent': 'switch', probe: 'switch' });
  if (rest.length !== 1) throw new UsageError('layout needs exactly one FILE');
  const qemu = await judgeFor(io);
  const { nodes } = await loadNodes('layout', rest, flags.node, qemu, io);
  const agent = flags['no-agent'] !== 'on';
  const { layouts, result, warning } = layoutReport(nodes, { agent, qemu });
  if (warning) io.err(`memfabric: warning: ${warning}\n`);
  const judged = flags.probe === 'on' ? await probeWith(qemu, nodes, agent, io) : undefined;
  const { layoutProbe } = await import('../runtime/judge');
  // The firmware's E820 table from QEMU itself replaces (or confirms) the model's.
  judged?.forEach((j, i) => {
    const n = result.nodes[i];
    n.probe = layoutProbe(j);
    if (j.result.ok) n.e820 = j.result.e820.map((e) => ({ start: '0x' + e.start.toString(16), end: '0x' + e.end.toString(16), type: e.type }));
  });
  if (flags.format === 'json') io.out(JSON.stringify(result, null, 2) + '\n');
  else io.out(layouts.map((l, i) => (judged ? probeText(judged[i]) : '') + layoutText(l)).join('\n'));
  return judged?.some((j) => j.verdict.refused || j.verdict.firmwareStop) ? 1 : 0;
}

// ---------------------------------------------------------------------------
// running clusters: boot, status, exec, stop (server/src/runtime/cluster.ts)

/**
 * A node's <guest> from the topology: the cluster's, with a <guest> inside the
 * node overriding it attribute by attribute; paths absolute (relative ones are
 * relative to the topology file).
 */
function topologyGuest(r: AnalyzedDocument, node: string, baseDir: string): UserGuest | undefined {
  const t = r.topology;
  if (!t) return undefined;
  const g: Record<string, string | undefined> = { ...(t.guest ?? {}) };
  const info = t.nodes.find((n) => n.name === node);
  const own = info && childElements(info.element, 'guest')[0];
  if (own) {
    const vars = { i: info.index, n: info.index + 1 };
    for (const k of ['kernel', 'initrd', 'disk', 'image', 'kernel-version']) {
      const v = attr(own, k)?.value.text;
      if (v !== undefined) g[k] = v.replace(/\{([ni])(?::0?(\d+))?\}/g, (_, w: 'i' | 'n', pad?: string) => String(vars[w]).padStart(pad ? Number(pad) : 0, '0'));
    }
  }
  const abs = (p?: string) => (p ? resolve(baseDir, p) : undefined);
  const kv = g['kernel-version'];
  const out: UserGuest = { kernel: abs(g.kernel), initrd: abs(g.initrd), disk: abs(g.disk), image: g.image === 'none' || g.image === 'builtin' ? g.image : undefined, kernelVersion: kv === '6.1' || kv === '6.12' ? kv : undefined };
  return Object.values(out).some((v) => v !== undefined) ? out : undefined;
}

/** The plan of one FILE as a cluster (all nodes; --node narrows what boot starts). */
function clusterSpec(cmd: string, file: string, node?: string, qemu?: QemuProfiles) {
  const { doc, r, nodes: every } = loadNodesSync(cmd, [file], undefined, qemu);
  // --node selects among the nodes of the one analysis
  const sel = node === undefined ? { nodes: every } : selectNodes(r, node, file);
  if ('error' in sel) throw new UsageError(sel.error);
  const nodes = sel.nodes;
  const name = r.topology?.clusterName ?? basename(doc.source).replace(/(\.cluster)?\.xml$|\.[^.]*$/, '');
  const toSpec = (ns: typeof nodes): ClusterSpec => ({
    name,
    file: doc.source,
    nodes: ns.map((n) => {
      const guest = topologyGuest(r, n.name, dirname(doc.source));
      return {
        name: n.name,
        argv: nodeArgv(n),
        files: nodeFiles(n).map((f) => ({ path: f.path, size: f.size })),
        ...(guest ? { guest } : {}),
        ...(n.host ? { host: n.host.text } : {}),
        ...(n.cxlRegions?.length ? { regions: regionPlans(n) } : {}),
        domainXml: (runtime: DomainRuntime, emulator: string) => nodeLibvirtXml(n, { runtime, emulator }),
      };
    }),
  });
  const all = toSpec(every);
  return { doc, r, nodes, spec: node === undefined ? all : toSpec(nodes), all };
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join('  ').trimEnd()).join('\n') + '\n';
}

/** --format json among args (so that even a usage error can answer in JSON). */
function wantsJson(args: string[]): boolean {
  return args.some((a, i) => a === '--format=json' || (a === '--format' && args[i + 1] === 'json'));
}

export async function boot(args: string[], io: Io): Promise<number> {
  const json = wantsJson(args);
  const fail = (code: number, error: string, extra: { node?: string; console?: string[] } = {}): number => {
    if (json) io.out(JSON.stringify({ ok: false, error, ...(extra.node ? { node: extra.node } : {}), ...(extra.console ? { console: extra.console } : {}) }, null, 2) + '\n');
    return code;
  };
  let flags: Record<string, string>, rest: string[];
  let loaded: ReturnType<typeof clusterSpec>;
  try {
    ({ flags, rest } = parseFlags(args, { node: null, timeout: null, format: ['text', 'json'], backend: ['qemu', 'libvirt'], connect: null }));
    if (rest.length !== 1) throw new UsageError('boot needs exactly one FILE');
    // The backend: --backend, else $MEMFABRIC_BACKEND (the extension's memfabric.backend setting), else our own QEMU processes.
    flags.backend ??= process.env.MEMFABRIC_BACKEND || 'qemu';
    if (flags.backend !== 'qemu' && flags.backend !== 'libvirt') throw new UsageError(`MEMFABRIC_BACKEND must be qemu or libvirt, not '${flags.backend}'`);
    if (flags.connect !== undefined && flags.backend !== 'libvirt') throw new UsageError('--connect goes with --backend libvirt');
    // Judged for the QEMU that will run it (a 10.0 has properties 7.2 lacks: num-dc-regions, volatile-memdev).
    loaded = clusterSpec('boot', rest[0], flags.node, await judgeFor(io));
  } catch (e) {
    if (!(e instanceof UsageError) || !json) throw e;
    io.err(`memfabric: ${e.message}\n`);
    return fail(2, e.message);
  }
  const timeout = flags.timeout === undefined ? 300 : Number(flags.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) {
    const msg = `--timeout must be a positive number of seconds, not '${flags.timeout}'`;
    if (!json) throw new UsageError(msg);
    io.err(`memfabric: ${msg}\n`);
    return fail(2, msg);
  }
  const { doc, r, nodes, spec } = loaded;
  const errLines: string[] = [];
  const n = reportErrors('boot', rest[0], doc, r, nodes, { out: io.out, err: (l) => { errLines.push(l.trimEnd()); io.err(l); } }, 'nothing started');
  if (n) return fail(1, errLines.join('\n'));
  const { ClusterError, bootCluster, neededGuestKernels, preflight } = await import('../runtime/cluster');
  const { buildImage } = await import('../runtime/image');
  try {
    const { qemu } = preflight(spec); // refuse a missing kernel, QEMU or accelerator before building anything
    // memfabric's image for each guest kernel the nodes boot (<guest kernel-version>, else by their QEMU's version)
    const images: Partial<Record<'6.1' | '6.12', Awaited<ReturnType<typeof buildImage>>>> = {};
    for (const [kernel, names] of neededGuestKernels(spec.nodes, qemu)) {
      try {
        images[kernel] = await buildImage({ kernel, log: (l) => { if (!/: cached in /.test(l)) io.err(`memfabric: ${l}\n`); } });
      } catch (e) {
        throw new ClusterError(`nothing started: the guest image cannot be built: ${(e as Error).message.replace(/^memfabric: /, '')} (Linux ${kernel}, for ${names.join(', ')})`);
      }
    }
    const image = images['6.1'] ?? images['6.12'];
    // Nodes that name their host (host=) run there, through libvirt; the others on --connect's libvirt (or the
    // default one) with --backend libvirt, else as our own QEMU processes. Every host answers before anything starts.
    let libvirtUri: string | undefined;
    const hosts = [...new Set(spec.nodes.map((n) => n.host).filter((h): h is string => !!h))];
    const { libvirtTarget, libvirtUnreachable } = await import('../host/libvirt');
    if (flags.backend === 'libvirt' || (hosts.length && spec.nodes.some((n) => !n.host))) {
      const t = libvirtTarget(process.env, flags.connect);
      if ('none' in t) throw new ClusterError(`nothing started: --backend libvirt: ${t.none}`);
      libvirtUri = t.uri;
    }
    for (const u of [...new Set([...(libvirtUri ? [libvirtUri] : []), ...hosts])]) {
      const why = await libvirtUnreachable(u);
      if (why) throw new ClusterError(`nothing started: libvirt at ${u} does not answer: ${why}`);
    }
    const res = await bootCluster(spec, { image, images, libvirtUri, timeoutMs: timeout * 1000, log: (l) => io.err(`memfabric: ${l}\n`) });
    if (json) {
      io.out(JSON.stringify({
        ok: true, cluster: spec.name, runDir: res.runDir, accel: res.accel,
        ...(libvirtUri || hosts.length ? { backend: 'libvirt', ...(libvirtUri ? { uri: libvirtUri } : {}) } : {}),
        nodes: res.nodes.map((x) => {
          const host = spec.nodes.find((n) => n.name === x.name)?.host ?? libvirtUri;
          return { name: x.name, ...(x.domain ? { domain: x.domain, uri: host } : { pid: x.pid }), bootMs: x.bootMs, consoleLog: join(x.dir, 'console.log'), ...(x.regions ? { regions: x.regions } : {}) };
        }),
      }, null, 2) + '\n');
      return 0;
    }
    io.out(`cluster ${spec.name}: ${res.nodes.length} node(s) ready (${res.accel.toUpperCase()}), run directory ${res.runDir}\n`);
    io.out(table([['NODE', 'STATE', libvirtUri ? 'DOMAIN' : 'PID', 'BOOT', 'CONSOLE LOG'], ...res.nodes.map((x) => [x.name, 'ready', x.domain ?? String(x.pid), `${(x.bootMs / 1000).toFixed(1)} s`, join(x.dir, 'console.log')])]));
    return 0;
  } catch (e) {
    if (e instanceof ClusterError) {
      io.err(`memfabric boot: ${e.message}\n`);
      return fail(1, e.message, { node: e.node, console: e.consoleLines });
    }
    if (!json) throw e;
    // the client reads stdout: even an unexpected failure answers in JSON
    io.err(`memfabric boot: internal error: ${(e as Error).stack ?? e}\n`);
    return fail(1, `internal error: ${(e as Error).message}`);
  }
}

/** memfabric image: build (or find in the cache) the guest image; where it is and what it is made of. */
export async function image(args: string[], io: Io): Promise<number> {
  const json = wantsJson(args);
  const { flags, rest } = parseFlags(args, { format: ['text', 'json'], kernel: ['6.1', '6.12'] });
  if (rest.length) throw new UsageError('image takes no FILE');
  const { buildImage, defaultCacheDir } = await import('../runtime/image');
  const kernel = (flags.kernel ?? '6.1') as '6.1' | '6.12';
  let img;
  try {
    img = await buildImage({ kernel, log: (l) => io.err(`memfabric: ${l}\n`) });
  } catch (e) {
    const msg = (e as Error).message.replace(/^memfabric: /, '');
    io.err(`memfabric image: ${msg}\n`);
    if (json) io.out(JSON.stringify({ ok: false, error: msg, cacheDir: resolve(defaultCacheDir()) }, null, 2) + '\n');
    return 1;
  }
  const packages = (img.packages ?? []).map((p) => {
    const i = p.indexOf('=');
    return { name: p.slice(0, i), version: p.slice(i + 1) };
  });
  const bytes = (f: string) => statSync(f).size;
  if (json) {
    io.out(JSON.stringify({ ok: true, key: img.key, flavour: kernel, dir: img.dir, cached: img.cached ?? false, kernel: img.kernel, initrd: img.initrd, kernelBytes: bytes(img.kernel), initrdBytes: bytes(img.initrd), kernelRelease: img.version, packages }, null, 2) + '\n');
    return 0;
  }
  io.out(`guest image ${img.key} (kernel ${kernel}): ${img.cached ? 'cached' : 'built'} in ${img.dir}\n`);
  io.out(`kernel  ${img.kernel}  (Linux ${img.version}, ${human(BigInt(bytes(img.kernel)))})\ninitrd  ${img.initrd}  (${human(BigInt(bytes(img.initrd)))}, with QEMU's guest agent)\n`);
  io.out(`packages:\n${table(packages.map((p) => [`  ${p.name}`, p.version]))}`);
  return 0;
}

export function status(args: string[], io: Io): number {
  const { flags, rest } = parseFlags(args, { format: ['text', 'json'] });
  if (rest.length !== 1) throw new UsageError('status needs exactly one FILE');
  const { all } = clusterSpec('status', rest[0]);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { clusterStatus } = require('../runtime/cluster') as typeof import('../runtime/cluster');
  const st = clusterStatus(all);
  if (flags.format === 'json') {
    io.out(JSON.stringify(st, null, 2) + '\n');
    return 0;
  }
  io.out(`cluster ${st.cluster} (${st.file}): ${st.running ? 'running' : 'not running'}; run directory ${st.runDir}\n`);
  const lv = st.nodes.some((n) => n.backend === 'libvirt');
  // (a node on another host logs no console here: `memfabric console` is its console)
  io.out(table([['NODE', 'STATE', lv ? 'DOMAIN' : 'PID', 'CONSOLE LOG'], ...st.nodes.map((n) => [n.name, n.state, (lv ? n.domain : n.pid ? String(n.pid) : undefined) ?? '-', n.uri && remoteHostUri(n.uri) ? '- (another host)' : n.consoleLog])]));
  for (const n of st.nodes) {
    if (n.backend === 'libvirt' && (n.state === 'ready' || n.state === 'starting')) io.out(`${n.name}: libvirt domain ${n.domain} on ${n.uri} (console: virsh -c '${n.uri}' console ${n.domain})\n`);
    else if (n.state === 'ready' || n.state === 'starting') io.out(`${n.name} sockets: console ${n.consoleSocket}  qmp ${n.qmpSocket}  agent ${n.agentSocket}\n`);
    if (n.state === 'ready') for (const r of n.regions ?? []) io.out(`${n.name}: ${describeRegion(r)}\n`);
  }
  if (!st.running && st.nodes.some((n) => existsSync(n.consoleLog))) io.out('console logs of the last run are kept in the run directory\n');
  return 0;
}

/** exec: the command's exit status; 255 when it could not be run (as ssh does). */
export async function execCmd(args: string[], io: Io): Promise<number> {
  const { flags, rest } = parseFlags(args, { timeout: null });
  if (rest.length < 3) throw new UsageError('usage: memfabric exec FILE NODE -- CMD [ARGS...]');
  const [file, node, ...cmd] = rest;
  const timeout = flags.timeout === undefined ? 120 : Number(flags.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not '${flags.timeout}'`);
  const { all } = clusterSpec('exec', file);
  if (!all.nodes.some((n) => n.name === node)) throw new UsageError(`no node '${node}' in ${file} (nodes: ${all.nodes.map((n) => n.name).join(', ')})`);
  const { execInNode } = await import('../runtime/cluster');
  try {
    const r = await execInNode(all, node, cmd, timeout * 1000);
    io.out(r.stdout);
    io.err(r.stderr);
    return r.exitCode;
  } catch (e) {
    io.err(`memfabric exec: ${(e as Error).message}\n`);
    return 255;
  }
}

export async function stop(args: string[], io: Io): Promise<number> {
  const { rest } = parseFlags(args, {});
  if (rest.length !== 1) throw new UsageError('stop needs exactly one FILE');
  const { all } = clusterSpec('stop', rest[0]);
  const { stopCluster } = await import('../runtime/cluster');
  const res = await stopCluster(all);
  if (!res.wasRunning && res.nodes.every((n) => n.how === 'not running')) {
    io.out(`cluster ${all.name}: not running\n`);
    return 0;
  }
  io.out(table([['NODE', 'STOPPED'], ...res.nodes.map((n) => [n.name, n.how === 'quit' ? 'quit (QMP)' : n.how === 'killed' ? 'killed (SIGKILL after 10 s)' : n.how === 'destroyed' ? 'destroyed and undefined (libvirt)' : 'was not running'])]));
  io.out(`cluster ${all.name}: stopped; console logs kept in ${res.runDir}\n`);
  return 0;
}

// ---------------------------------------------------------------------------
// verify, view, console: the running guests (server/src/runtime/verify.ts, guest-view.ts, console.ts)

/** The ready nodes of a running cluster; the others are named on stderr. */
function readyNodes(cmd: string, file: string, io: Io) {
  const { all, nodes } = clusterSpec(cmd, file);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { clusterStatus } = require('../runtime/cluster') as typeof import('../runtime/cluster');
  const st = clusterStatus(all);
  const ready = st.nodes.filter((n) => n.state === 'ready').map((n) => n.name);
  for (const n of st.nodes) if (n.state !== 'ready') io.err(`memfabric ${cmd}: ${n.name} is ${n.state}; not checked\n`);
  return { all, nodes: nodes.filter((n) => ready.includes(n.name)), status: st };
}

/** The machine libvirt runs for a domain: its command line (virsh domxml-to-native), read as any other. */
async function libvirtNode(uri: string, domain: string, qemu: QemuProfile): Promise<NodeModel> {
  const { virsh, virshError } = await import('../host/libvirt');
  const r = await virsh(uri, ['domxml-to-native', 'qemu-argv', '--domain', domain], process.env, 60_000);
  if (r.status !== 0) throw new Error(`libvirt's command line for ${domain}: ${virshError(r.stderr)}`);
  const [doc] = analyzeDocuments([{ text: r.stdout, source: `libvirt:${domain}`, kind: 'qemu' }], nodeHost, { qemu });
  if (doc.nodes.length !== 1) throw new Error(`libvirt's command line for ${domain} was not read as one node`);
  return doc.nodes[0];
}

export async function verify(args: string[], io: Io): Promise<number> {
  const { flags, rest } = parseFlags(args, { format: ['text', 'json'], timeout: null });
  if (rest.length !== 1) throw new UsageError('verify needs exactly one FILE');
  const timeout = flags.timeout === undefined ? 120 : Number(flags.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not '${flags.timeout}'`);
  const { all, nodes } = readyNodes('verify', rest[0], io);
  if (!nodes.length) {
    const error = `no node of cluster ${all.name} is ready (run memfabric boot ${rest[0]})`;
    io.err(`memfabric verify: ${error}\n`);
    if (flags.format === 'json') io.out(JSON.stringify({ nodes: [], error }, null, 2) + '\n');
    return 1;
  }
  const { computeLayout } = await import('../engine/layout/index');
  const { guestSnapshot } = await import('../runtime/guest-view');
  const { compareLayout } = await import('../runtime/verify');
  const qemu = await judgeFor(io);
  const warning = (await import('../engine/layout/report')).versionWarning(qemu);
  if (warning) io.err(`memfabric: warning: ${warning}\n`);
  const results = [];
  const { clusterStatus } = await import('../runtime/cluster');
  const running = clusterStatus(all);
  for (const n of nodes) {
    try {
      const snap = await guestSnapshot(all, n.name, timeout * 1000);
      // A libvirt domain runs libvirt's command line (its root ports, controllers, balloon, agent channel): predict that one.
      const st = running.nodes.find((x) => x.name === n.name);
      const model = st?.backend === 'libvirt' ? await libvirtNode(st.uri!, st.domain!, qemu) : n;
      // (the guest's own kernel release decides how its /proc/iomem names things)
      results.push(compareLayout(n.name, computeLayout(model, { agent: model === n, qemu: layoutQemu(qemu), linux: snap.kernel || undefined }), snap));
    } catch (e) {
      io.err(`memfabric verify: ${n.name}: ${(e as Error).message}\n`);
      results.push({ name: n.name, ok: false, differences: [{ what: 'guest', predicted: null, guest: `not readable: ${(e as Error).message}` }] });
    }
  }
  if (flags.format === 'json') io.out(JSON.stringify({ nodes: results }, null, 2) + '\n');
  else {
    for (const r of results) {
      if (r.ok) {
        io.out(`${r.name}: the guest's memory map equals the prediction (/proc/iomem from 1 MiB, /sys/firmware/memmap, PCI memory BARs)\n`);
        continue;
      }
      io.out(`${r.name}: ${r.differences.length} difference(s)\n`);
      for (const d of r.differences) {
        io.out(`  ${d.what}\n    predicted: ${d.predicted ?? '(none)'}\n    guest:     ${d.guest ?? '(none)'}\n`);
      }
    }
  }
  return results.every((r) => r.ok) ? 0 : 1;
}

export async function view(args: string[], io: Io): Promise<number> {
  const { flags, rest } = parseFlags(args, { format: ['text', 'json'], timeout: null });
  const kinds = ['lspci', 'iomem', 'cxl', 'daxctl'];
  if (rest.length !== 3 || !kinds.includes(rest[2])) throw new UsageError(`usage: memfabric view FILE NODE ${kinds.join('|')} [--format text|json]`);
  const [file, node, kind] = rest;
  const timeout = flags.timeout === undefined ? 60 : Number(flags.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not '${flags.timeout}'`);
  const { all } = clusterSpec('view', file);
  if (!all.nodes.some((n) => n.name === node)) throw new UsageError(`no node '${node}' in ${file} (nodes: ${all.nodes.map((n) => n.name).join(', ')})`);
  const { execInNode } = await import('../runtime/cluster');
  const gv = await import('../runtime/guest-view');
  const hx = (v: bigint) => '0x' + v.toString(16);
  try {
    if (kind === 'cxl' || kind === 'daxctl') {
      // both tools print JSON (nothing at all when there is nothing to list)
      const argv = kind === 'cxl' ? ['cxl', 'list', '-v'] : ['daxctl', 'list'];
      const r = await execInNode(all, node, argv, timeout * 1000);
      io.err(r.stderr);
      if (r.exitCode !== 0) {
        io.err(`memfabric view: '${argv.join(' ')}' failed in ${node} (exit ${r.exitCode})\n`);
        return r.exitCode;
      }
      let data: unknown;
      try {
        data = r.stdout.trim() ? JSON.parse(r.stdout) : [];
      } catch {
        io.err(`memfabric view: '${argv.join(' ')}' in ${node} did not print JSON:\n${r.stdout}`);
        return 1;
      }
      if (!Array.isArray(data)) data = [data];
      if (flags.format === 'json') io.out(JSON.stringify({ node, [kind]: data }, null, 2) + '\n');
      else {
        const lines = gv.renderToolTree(data);
        io.out([`# ${node}: ${argv.join(' ')}`, ...(lines.length ? lines : [kind === 'cxl' ? '(no CXL objects)' : '(no DAX devices)'])].join('\n') + '\n');
      }
      return 0;
    }
    const snap = await gv.guestSnapshot(all, node, timeout * 1000);
    if (kind === 'lspci') {
      const devs = gv.parseLspci(snap.lspci, gv.parsePciResources(snap.resources));
      if (flags.format === 'json') {
        io.out(JSON.stringify({ node, devices: devs.map((d) => ({ ...d, bars: d.bars.map((b) => ({ bar: b.bar, start: b.start < 0n ? null : hx(b.start), size: hx(b.size), bits: b.bits, prefetchable: b.prefetchable })) })) }, null, 2) + '\n');
      } else {
        const lines = [`# ${node}: lspci (memory BARs)`];
        for (const d of devs) {
          lines.push(`${d.bdf} [${d.vendorDevice}] ${d.description}`);
          for (const b of d.bars) {
            lines.push(`  BAR${b.bar}  ${b.start < 0n ? 'unassigned'.padEnd(21) : `${b.start.toString(16).padStart(10, '0')}-${(b.start + b.size - 1n).toString(16).padStart(10, '0')}`}  ${`${b.bits}-bit${b.prefetchable ? ' pref' : ''}`.padEnd(11)} ${human(b.size).padStart(9)}`);
          }
        }
        io.out(lines.join('\n') + '\n');
      }
    } else {
      const tree = gv.parseIomem(snap.iomem);
      type J = { start: string; end: string; name: string; children?: J[] };
      const toJ = (es: typeof tree): J[] => es.map((e) => ({ start: hx(e.start), end: hx(e.end), name: e.name, ...(e.children.length ? { children: toJ(e.children) } : {}) }));
      if (flags.format === 'json') io.out(JSON.stringify({ node, iomem: toJ(tree) }, null, 2) + '\n');
      else {
        const lines = [`# ${node}: /proc/iomem`];
        const walk = (es: typeof tree, depth: number) => {
          for (const e of es) {
            lines.push(`${'  '.repeat(depth)}${e.start.toString(16).padStart(10, '0')}-${e.end.toString(16).padStart(10, '0')} : ${e.name.padEnd(Math.max(1, 40 - depth * 2))} ${human(e.end - e.start + 1n)}`);
            walk(e.children, depth + 1);
          }
        };
        walk(tree, 0);
        io.out(lines.join('\n') + '\n');
      }
    }
    return 0;
  } catch (e) {
    io.err(`memfabric view: ${(e as Error).message}\n`);
    return 255;
  }
}

export async function consoleCmd(args: string[], io: Io): Promise<number> {
  const { rest } = parseFlags(args, {});
  if (rest.length !== 2) throw new UsageError('usage: memfabric console FILE NODE');
  const [file, node] = rest;
  const { all } = clusterSpec('console', file);
  if (!all.nodes.some((n) => n.name === node)) throw new UsageError(`no node '${node}' in ${file} (nodes: ${all.nodes.map((n) => n.name).join(', ')})`);
  const { clusterStatus } = await import('../runtime/cluster');
  const n = clusterStatus(all).nodes.find((x) => x.name === node)!;
  if (n.state !== 'ready' && n.state !== 'starting') {
    io.err(`memfabric console: node ${node} is ${n.state}${n.state === 'stopped' ? ` (run memfabric boot ${file})` : ''}\n`);
    return 1;
  }
  if (n.backend === 'libvirt') {
    // The domain's console, through libvirt (virsh console; Ctrl-] leaves).
    const { spawn } = await import('node:child_process');
    const child = spawn('virsh', ['-c', n.uri!, 'console', n.domain!, '--force'], { stdio: 'inherit' });
    return new Promise((resolve) => {
      child.on('error', (e) => {
        io.err(`memfabric console: cannot run virsh: ${e.message}\n`);
        resolve(1);
      });
      child.on('close', (code) => resolve(code ?? 1));
    });
  }
  const { attachConsole } = await import('../runtime/console');
  return attachConsole(n.consoleSocket, node);
}

/**
 * memfabric cxl poison|error|event|dc …: one CXL QMP command to a Type 3
 * device of a running node (server/src/runtime/cxl-control.ts). Everything is
 * checked before QMP is touched: the arguments against the device the
 * topology describes, then whether the node's QEMU has the command. Exit 0
 * when QEMU accepted it, 1 when QEMU refused it (its words quoted), lacks it,
 * or the node is not running, 2 for a usage error or an argument that fails a check.
 */
/** memfabric cxl region FILE NODE [--window K]: the regions the topology asks for, made in a running node's guest. */
async function cxlRegionCmd(args: string[], io: Io): Promise<number> {
  const { flags, rest } = parseFlags(args, { format: ['text', 'json'], window: null, timeout: null });
  if (rest.length !== 2) throw new UsageError('usage: memfabric cxl region FILE NODE [--window K] [--format text|json]');
  const [file, node] = rest;
  const timeout = flags.timeout === undefined ? 120 : Number(flags.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not '${flags.timeout}'`);
  const { all } = clusterSpec('cxl', file);
  const n = all.nodes.find((x) => x.name === node);
  if (!n) throw new UsageError(`no node '${node}' in ${file} (nodes: ${all.nodes.map((x) => x.name).join(', ')})`);
  const plans = (n.regions ?? []).filter((p) => flags.window === undefined || String(p.request.window) === flags.window);
  if (!plans.length) {
    io.err(`memfabric cxl region: ${node} asks for no region${flags.window === undefined ? '' : ` on window ${flags.window}`} (<window region="ram|pmem"> in ${file})\n`);
    return 2;
  }
  const { execInNode, recordRegions, ClusterError } = await import('../runtime/cluster');
  const { makeRegions, RegionError } = await import('../runtime/cxl-regions');
  try {
    const made = await makeRegions((argv) => execInNode(all, node, argv, timeout * 1000), plans);
    recordRegions(all, node, made);
    if (flags.format === 'json') io.out(JSON.stringify({ node, regions: made }, null, 2) + '\n');
    else for (const r of made) io.out(`${node}: ${describeRegion(r)}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof RegionError) && !(e instanceof ClusterError)) throw e;
    io.err(`memfabric cxl region: ${node}: ${e.message}\n`);
    if (flags.format === 'json') io.out(JSON.stringify({ node, error: e.message }, null, 2) + '\n');
    return 1;
  }
}

/** memfabric cxl events FILE NODE [--since N]: the cxl_* trace records of a running node's guest, parsed. */
async function cxlEventsCmd(args: string[], io: Io): Promise<number> {
  const { flags, rest } = parseFlags(args, { format: ['text', 'json'], since: null, timeout: null });
  if (rest.length !== 2) throw new UsageError('usage: memfabric cxl events FILE NODE [--since N] [--format text|json]');
  const [file, node] = rest;
  const since = flags.since === undefined ? 0 : Number(flags.since);
  if (!Number.isInteger(since) || since < 0) throw new UsageError(`--since must be a record's sequence number (0 or more), not '${flags.since}'`);
  const timeout = flags.timeout === undefined ? 30 : Number(flags.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not '${flags.timeout}'`);
  const { all } = clusterSpec('cxl', file);
  if (!all.nodes.some((x) => x.name === node)) throw new UsageError(`no node '${node}' in ${file} (nodes: ${all.nodes.map((x) => x.name).join(', ')})`);
  const { execInNode } = await import('../runtime/cluster');
  const { cxlEvents } = await import('../runtime/cxl-guest');
  try {
    const ev = await cxlEvents((argv) => execInNode(all, node, argv, timeout * 1000), since);
    if (ev.note) io.err(`memfabric cxl events: ${node}: note: ${ev.note}\n`);
    if (flags.format === 'json') io.out(JSON.stringify({ node, since, last: ev.last, records: ev.records, ...(ev.note ? { note: ev.note } : {}) }, null, 2) + '\n');
    else for (const r of ev.records) io.out(`${node} #${r.seq} ${r.time.toFixed(6)} ${r.line.replace(/^.*?: (cxl_\w+: )/, '$1')}\n`);
    return 0;
  } catch (e) {
    // the node not ready (ClusterError), the agent not answering, the guest's shell failing: said, exit 1
    if (!(e instanceof Error)) throw e;
    io.err(`memfabric cxl events: ${node}: ${(e as Error).message}\n`);
    if (flags.format === 'json') io.out(JSON.stringify({ node, error: (e as Error).message }, null, 2) + '\n');
    return 1;
  }
}

export async function cxlCmd(args: string[], io: Io): Promise<number> {
  if (args[0] === 'region') return cxlRegionCmd(args.slice(1), io);
  if (args[0] === 'events') return cxlEventsCmd(args.slice(1), io);
  const json = wantsJson(args);
  const cc = await import('../runtime/cxl-control');
  const refuse = (code: number, rule: string, message: string, extra: Record<string, unknown> = {}): number => {
    io.err(`memfabric cxl: ${message}\n`);
    if (json) io.out(JSON.stringify({ ok: false, rule, error: message, ...extra, sent: null }, null, 2) + '\n');
    return code;
  };
  let req: import('../runtime/cxl-control').CxlRequest;
  try {
    req = cc.parseCxlArgs(args);
  } catch (e) {
    if (e instanceof cc.CxlArgError) return refuse(2, e.rule, e.message);
    throw e;
  }
  const t = req.options.get('timeout')?.[0];
  const timeout = t === undefined ? 10 : Number(t);
  if (!Number.isFinite(timeout) || timeout <= 0) return refuse(2, 'usage', `--timeout must be a positive number of seconds, not '${t}'`);
  let loaded: ReturnType<typeof clusterSpec>;
  try {
    loaded = clusterSpec('cxl', req.file);
  } catch (e) {
    if (e instanceof UsageError) return refuse(2, 'usage', e.message);
    throw e;
  }
  const model = loaded.r.nodes.find((n) => n.name === req.node);
  if (!model) return refuse(2, 'usage', `no node '${req.node}' in ${req.file} (nodes: ${loaded.r.nodes.map((n) => n.name).join(', ')})`);
  const at = { node: req.node, device: req.device };
  let cmd: import('../runtime/cxl-control').CxlQmp;
  let dev: import('../runtime/cxl-control').Type3Device;
  try {
    dev = cc.type3Device(model, req.device);
    cmd = cc.buildCxlCommand(req, dev);
  } catch (e) {
    if (e instanceof cc.CxlArgError) return refuse(2, e.rule, `${req.node} ${req.device}: ${e.message}`, at);
    throw e;
  }
  const { clusterStatus } = await import('../runtime/cluster');
  const st = clusterStatus(loaded.all).nodes.find((n) => n.name === req.node)!;
  if (st.state !== 'ready' && st.state !== 'starting') return refuse(1, 'cxl-node-state', `node ${req.node} is ${st.state}${st.state === 'stopped' ? ` (run memfabric boot ${req.file})` : ''}; nothing sent`, at);
  if (st.backend === 'libvirt') return refuse(1, 'cxl-libvirt', `node ${req.node} is a libvirt domain: memfabric cxl talks to the QMP socket of its own QEMU processes only (libvirt owns the domain's monitor); nothing sent`, at);
  // The node's QEMU: the binary it was started with (boot records it), else the one the user runs now.
  const { profile, note } = await userProfile(process.env, st.qemu ?? undefined);
  if (note) io.err(`memfabric: note: ${note}\n`);
  const missing = cc.missingCxlCommand(profile, cmd.execute);
  if (missing) return refuse(1, 'cxl-qemu-version', `${missing}; nothing sent`, { ...at, qemu: profile.version });
  // The guest's side (runtime/cxl-guest.ts): its memdev, and the trace records there before the command.
  const cg = await import('../runtime/cxl-guest');
  const { execInNode } = await import('../runtime/cluster');
  const run = (argv: string[]) => execInNode(loaded.all, req.node, argv, 30_000);
  let memdev: string | undefined;
  let before: string[] | undefined;
  let guestNote: string | undefined;
  let unmaskNote: string | undefined;
  if (dev.serial === undefined) guestNote = `'${req.device}' has no serial number (sn=): its memdev in the guest is not known`;
  else {
    try {
      const info = await cg.guestMemdevInfo(run, dev.serial);
      memdev = info?.memdev;
      if (!memdev) guestNote = `the guest shows no memdev with serial 0x${dev.serial.toString(16)}`;
      else if (cg.TRACE_EVENT[cmd.execute]) before = await cg.traceRecords(run, cg.TRACE_EVENT[cmd.execute]!, memdev);
      // An injected RAS error is a PCIe internal error, masked in the device's AER registers unless unmasked.
      if (memdev && info?.host && /^cxl-inject-(un)?correctable-error/.test(cmd.execute)) unmaskNote = await cg.unmaskInternalErrors(run, info.host);
    } catch (e) {
      guestNote = `the guest cannot be asked: ${(e as Error).message}`;
      memdev = undefined;
    }
  }
  const answer = await cc.sendCxlCommand(st.qmpSocket, cmd, timeout * 1000);
  let guest: import('../runtime/cxl-guest').GuestView | { notes: string[] } = { notes: guestNote ? [guestNote] : [] };
  if (answer.ok && memdev) guest = await cg.readBack(run, cmd.execute, memdev, before).catch((e: Error) => ({ notes: [`reading the guest back failed: ${e.message}`] }));
  if (unmaskNote) guest.notes.unshift(unmaskNote);
  const summary = { ok: answer.ok, ...at, path: dev.qomPath, qemu: profile.version, sent: cmd };
  if (json) {
    const ans = answer.ok ? { return: answer.return } : 'error' in answer ? { error: answer.error } : { none: answer.noAnswer };
    io.out(JSON.stringify({ ...summary, answer: ans, ...(answer.ok ? { guest } : {}) }, null, 2) + '\n');
  }
  if (answer.ok) {
    if (!json) {
      io.out(`${req.node} ${req.device}: QEMU ${profile.version} accepted ${cmd.execute} ${JSON.stringify(cmd.arguments)}\n`);
      const g = guest as import('../runtime/cxl-guest').GuestView;
      const who = g.memdev ? `${req.node} guest ${g.memdev}` : `${req.node} guest`;
      for (const e of g.mediaErrors ?? []) io.out(`${who}: media error at DPA 0x${e.offset.toString(16)}, ${e.length} bytes${e.source ? ` (${e.source})` : ''}\n`);
      if (g.mediaErrors && !g.mediaErrors.length) io.out(`${who}: no media error listed\n`);
      for (const r of g.records ?? []) io.out(`${who}: ${r.replace(/^.*?: (cxl_\w+: )/, '$1')}\n`);
      for (const n of g.notes) io.out(`${who}: ${n}\n`);
    }
    return 0;
  }
  if ('error' in answer) io.err(`memfabric cxl: QEMU ${profile.version} refused ${cmd.execute} on ${req.node} ${req.device}: "${answer.error.desc}" (${answer.error.class})\n`);
  else io.err(`memfabric cxl: ${req.node}: ${answer.noAnswer} (${st.qmpSocket}); ${cmd.execute} may not have been done\n`);
  return 1;
}

export async function main(argv: string[], io: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  const [cmd, ...args] = argv;
  try {
    switch (cmd) {
      case 'check':
        return await check(args, io);
      case 'plan':
        return await plan(args, io);
      case 'layout':
        return await layout(args, io);
      case 'boot':
        return await boot(args, io);
      case 'status':
        return status(args, io);
      case 'exec':
        return await execCmd(args, io);
      case 'stop':
        return await stop(args, io);
      case 'verify':
        return await verify(args, io);
      case 'view':
        return await view(args, io);
      case 'console':
        return await consoleCmd(args, io);
      case 'image':
        return await image(args, io);
      case 'cxl':
        return await cxlCmd(args, io);
      case 'lsp':
        // The language server runs until the client sends exit; loaded lazily (it imports this module).
        (await import('../lsp/server')).startServer(args);
        return -1;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE + '\n');
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`memfabric: ${e.message}\n`);
      return 2;
    }
    io.err(`memfabric: internal error: ${(e as Error).stack ?? e}\n`);
    return 2;
  }
}

/** A closed pipe (memfabric plan | head) ends the output quietly, as other tools do. */
export function quietEpipe(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

if (require.main === module) {
  quietEpipe();
  main(process.argv.slice(2)).then((code) => {
    if (code >= 0) process.exitCode = code;
  });
}
