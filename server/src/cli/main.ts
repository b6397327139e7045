/**
 * The memfabric command line: a stable contract for scripts and CI.
 *   memfabric check [--format text|json] [--placement] FILE...
 *   memfabric plan [--format json|argv|libvirt] [--node NAME] FILE
 * Exit status: check 1 if any error-severity diagnostic; 2 for usage or I/O errors.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { analyzeDocuments, AnalyzedDocument } from '../engine/index';
import { Diagnostic } from '../engine/diagnostics';
import { LineMap } from '../engine/text/source';
import { nodeArgv, shellQuote } from '../engine/emit/argv';
import { nodeFiles } from '../engine/emit/files';
import { nodeLibvirtXml } from '../engine/emit/libvirt';
import { nodeHost } from '../host/probe';
import { computeLayout, IomemEntry, NodeLayout } from '../engine/layout/index';
import { human } from '../engine/text/sizes';

export class UsageError extends Error {}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const USAGE = `usage:
  memfabric check [--format text|json] [--placement] FILE...
  memfabric plan [--format json|argv|libvirt] [--node NAME] FILE
  memfabric layout [--format text|json] [--node NAME] [--no-agent] FILE
  memfabric lsp --stdio`;

function parseFlags(args: string[], allowed: Record<string, string[] | null>): { flags: Record<string, string>; rest: string[] } {
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
      const v = inline ?? args[++i];
      if (v === undefined) throw new UsageError(`--${k} needs a value`);
      const choices = allowed[k];
      if (choices && !choices.includes(v)) throw new UsageError(`--${k} must be one of ${choices.join(', ')}`);
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

export function check(args: string[], io: Io): number {
  const information = args.includes('--placement');
  const { flags, rest } = parseFlags(args.filter((a) => a !== '--placement'), { format: ['text', 'json'] });
  if (!rest.length) throw new UsageError('check needs at least one FILE');
  const docs = loadDocs(rest);
  const results = analyzeDocuments(docs, nodeHost, { information });
  const maps = new Map(docs.map((d) => [d.source, new LineMap(d.text)]));
  let errors = 0;
  for (const r of results) errors += r.diagnostics.filter((d) => d.severity === 'error').length;
  const display = new Map(docs.map((d, i) => [d.source, rest[i]]));
  const sorted = (r: AnalyzedDocument) => [...r.diagnostics].sort((a, b) => a.span.start - b.span.start || a.code.localeCompare(b.code));
  if (flags.format === 'json') {
    io.out(
      JSON.stringify({
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
    io.out(`${count ? `${count} problem(s), ${errors} error(s)` : 'no problems'} in ${results.length} file(s), ${nodes} node(s)\n`);
  }
  return errors ? 1 : 0;
}

export function plan(args: string[], io: Io): number {
  const { flags, rest } = parseFlags(args, { format: ['json', 'argv', 'libvirt'], node: null });
  if (rest.length !== 1) throw new UsageError('plan needs exactly one FILE');
  const [doc] = loadDocs(rest);
  const [r] = analyzeDocuments([doc], nodeHost);
  let nodes = r.nodes;
  if (flags.node !== undefined) {
    nodes = nodes.filter((n) => n.name === flags.node);
    if (!nodes.length) throw new UsageError(`no node '${flags.node}' in ${rest[0]} (nodes: ${r.nodes.map((n) => n.name).join(', ') || 'none'})`);
  }
  const errs = r.diagnostics.filter((d) => d.severity === 'error' && (!d.node || nodes.some((n) => n.name === d.node)));
  if (errs.length) {
    const lm = new LineMap(doc.text);
    for (const d of errs.slice(0, 5)) {
      const p = lm.position(d.span.start);
      io.err(`${rest[0]}:${p.line + 1}:${p.character + 1}: error [${d.code}] ${d.message}\n`);
    }
    io.err(`memfabric plan: ${errs.length} error(s); the plan would not start (run memfabric check ${rest[0]})\n`);
  }
  const format = flags.format ?? 'json';
  if (format === 'json') {
    io.out(
      JSON.stringify({
        nodes: nodes.map((n) => ({ name: n.name, argv: nodeArgv(n), files: nodeFiles(n).map((f) => ({ path: f.path, size: '0x' + f.size.toString(16) })) })),
      }, null, 2) + '\n',
    );
  } else if (format === 'argv') {
    for (const n of nodes) io.out(`# ${n.name}\n${shellQuote(nodeArgv(n))}\n`);
  } else {
    for (const n of nodes) io.out(nodeLibvirtXml(n));
  }
  return errs.length ? 1 : 0;
}

const hx = (v: bigint) => '0x' + v.toString(16);

/** "7.2.22" from `qemu-system-x86_64 --version`, or undefined when it is not installed. */
function installedQemuVersion(): string | undefined {
  const r = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? /version (\d+\.\d+(?:\.\d+)?)/.exec(r.stdout)?.[1] : undefined;
}

/** The layout contract: hex in lower case, `end` inclusive as /proc/iomem prints it. */
export function layoutJson(l: NodeLayout) {
  const flat = (es: IomemEntry[]): { start: string; end: string; name: string }[] => es.map((e) => ({ start: hx(e.start), end: hx(e.end), name: e.name }));
  return {
    name: l.name,
    qemuVersion: l.qemuVersion,
    iomem: flat(l.iomem),
    e820: l.e820.map((e) => ({ start: hx(e.start), end: hx(e.end), type: e.type })),
    bars: l.bars.map((b) => ({ device: b.device, bdf: b.bdf, bar: b.bar, start: hx(b.start), size: hx(b.size), bits: b.bits, prefetchable: b.prefetchable })),
  };
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
  const lines = [`# ${l.name}: guest physical memory map (QEMU ${l.qemuVersion}, SeaBIOS 1.16.2, Linux), from 1 MiB up`, ''];
  for (const { e, depth } of all) lines.push(`${'  '.repeat(depth)}${range(e.start, e.end)} : ${e.name.padEnd(34 - depth * 2)} ${human(e.end - e.start + 1n)}`);
  lines.push('', 'PCI memory BARs:');
  for (const b of l.bars) {
    lines.push(`  ${b.bdf} BAR${b.bar}  ${range(b.start, b.start + b.size - 1n)}  ${`${b.bits}-bit${b.prefetchable ? ' pref' : ''}`.padEnd(11)} ${human(b.size).padStart(9)}  ${b.device}`);
  }
  return lines.join('\n') + '\n';
}

export function layout(args: string[], io: Io): number {
  const noAgent = args.includes('--no-agent');
  const { flags, rest } = parseFlags(args.filter((a) => a !== '--no-agent'), { format: ['text', 'json'], node: null });
  if (rest.length !== 1) throw new UsageError('layout needs exactly one FILE');
  const [doc] = loadDocs(rest);
  const [r] = analyzeDocuments([doc], nodeHost);
  let nodes = r.nodes;
  if (flags.node !== undefined) {
    nodes = nodes.filter((n) => n.name === flags.node);
    if (!nodes.length) throw new UsageError(`no node '${flags.node}' in ${rest[0]} (nodes: ${r.nodes.map((n) => n.name).join(', ') || 'none'})`);
  }
  const layouts = nodes.map((n) => computeLayout(n, { agent: !noAgent }));
  const installed = installedQemuVersion();
  const warning =
    installed && !installed.startsWith(layouts[0]?.qemuVersion ?? '7.2')
      ? `the layout model is for QEMU ${layouts[0]?.qemuVersion ?? '7.2'} with SeaBIOS 1.16.2; the installed qemu-system-x86_64 is ${installed}, whose layout may differ`
      : undefined;
  if (warning) io.err(`memfabric: warning: ${warning}\n`);
  if (flags.format === 'json') io.out(JSON.stringify({ nodes: layouts.map((l) => ({ ...layoutJson(l), ...(warning ? { warning } : {}) })) }, null, 2) + '\n');
  else io.out(layouts.map(layoutText).join('\n'));
  return 0;
}

export async function main(argv: string[], io: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  const [cmd, ...args] = argv;
  try {
    switch (cmd) {
      case 'check':
        return check(args, io);
      case 'plan':
        return plan(args, io);
      case 'layout':
        return layout(args, io);
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
