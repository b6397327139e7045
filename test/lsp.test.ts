/**
 * The language server as editors run it: `memfabric lsp --stdio` in a child
 * process, spoken to over LSP with vscode-jsonrpc's real stream reader and
 * writer. Diagnostics, code actions, hover, completion, ids, symbols, the
 * memfabric/layout request, and 2000 broken documents it must survive.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, MessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import {
  CodeAction,
  CompletionItem,
  CompletionList,
  Diagnostic,
  DocumentSymbol,
  Hover,
  InitializeResult,
  Location,
  MarkupContent,
  PublishDiagnosticsParams,
  WorkspaceEdit,
} from 'vscode-languageserver-protocol';
import { LayoutRequest, SERVER_NODE_FLAGS } from '../server/src/lsp/protocol';
import { analysisDelay } from '../server/src/lsp/server';

const ROOT = resolve(__dirname, '../..');
const uriOf = (p: string) => pathToFileURL(p).toString();

const BAD_QEMU = 'qemu-system-x86_64 -M q35 -m 2G \\\n  -object memory-backend-file,id=m,mem-path=m.raw,size=1GB,share=on \\\n  -device ivshmem-plain,memdev=m\n';
const FAM_QEMU = 'qemu-system-x86_64 -M q35 -m 1G \\\n  -object memory-backend-file,id=fam,mem-path=fam.raw,size=32G,share=on \\\n  -device ivshmem-plain,id=shm0,memdev=fam,bus=pcie.0\n';

class Client {
  readonly child: ChildProcess;
  readonly conn: MessageConnection;
  exited: number | null | undefined = undefined;
  stderr = '';
  /** Errors the server logged (a handler that threw). */
  errors: string[] = [];
  private diags = new Map<string, PublishDiagnosticsParams[]>();
  private waiters: { uri: string; pred: (p: PublishDiagnosticsParams) => boolean; resolve: (p: PublishDiagnosticsParams) => void }[] = [];
  private version = new Map<string, number>();

  constructor() {
    this.child = spawn(process.execPath, [...SERVER_NODE_FLAGS, join(ROOT, 'bin/memfabric.js'), 'lsp', '--stdio'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (b) => (this.stderr += b));
    this.child.on('exit', (code) => (this.exited = code));
    this.conn = createMessageConnection(new StreamMessageReader(this.child.stdout!), new StreamMessageWriter(this.child.stdin!));
    this.conn.onNotification('textDocument/publishDiagnostics', (p: PublishDiagnosticsParams) => {
      this.diags.set(p.uri, [...(this.diags.get(p.uri) ?? []), p]);
      this.waiters = this.waiters.filter((w) => {
        if (w.uri !== p.uri || !w.pred(p)) return true;
        w.resolve(p);
        return false;
      });
    });
    this.conn.onNotification('window/logMessage', (m: { type: number; message: string }) => {
      if (m.type === 1) this.errors.push(m.message);
    });
    this.conn.listen();
  }

  /** The next (or latest, if it already matches) diagnostics for uri that satisfy pred. */
  diagnostics(uri: string, pred: (p: PublishDiagnosticsParams) => boolean = () => true, ms = 10000): Promise<PublishDiagnosticsParams> {
    const last = this.diags.get(uri)?.at(-1);
    if (last && pred(last)) return Promise.resolve(last);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no matching diagnostics for ${uri} in ${ms} ms; last: ${JSON.stringify(this.diags.get(uri)?.at(-1))}`)), ms);
      this.waiters.push({ uri, pred, resolve: (p) => (clearTimeout(t), res(p)) });
    });
  }

  open(uri: string, text: string, languageId: string) {
    this.version.set(uri, 1);
    this.diags.delete(uri);
    return this.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId, version: 1, text } });
  }

  change(uri: string, text: string) {
    const v = (this.version.get(uri) ?? 1) + 1;
    this.version.set(uri, v);
    return this.conn.sendNotification('textDocument/didChange', { textDocument: { uri, version: v }, contentChanges: [{ text }] });
  }

  /** Every publishDiagnostics received for uri since it was opened, in order. */
  history(uri: string): readonly PublishDiagnosticsParams[] {
    return this.diags.get(uri) ?? [];
  }

  currentVersion(uri: string) {
    return this.version.get(uri);
  }

  request<R>(method: string, params: unknown): Promise<R> {
    return this.conn.sendRequest(method, params) as Promise<R>;
  }
}

/** Position of the n-th occurrence of needle (+ delta characters). */
function posOf(text: string, needle: string, delta = 0, nth = 0) {
  let i = -1;
  for (let k = 0; k <= nth; k++) i = text.indexOf(needle, i + 1);
  assert.ok(i >= 0, `${needle} not in text`);
  const at = i + delta;
  const before = text.slice(0, at);
  const line = before.split('\n').length - 1;
  return { line, character: at - (before.lastIndexOf('\n') + 1) };
}

/** Apply LSP TextEdits (line/character positions) to a text. */
function applyLspEdits(text: string, edits: { range: { start: { line: number; character: number }; end: { line: number; character: number } }; newText: string }[]): string {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
  const off = (p: { line: number; character: number }) => starts[p.line] + p.character;
  let out = text;
  for (const e of [...edits].sort((a, b) => off(b.range.start) - off(a.range.start))) out = out.slice(0, off(e.range.start)) + e.newText + out.slice(off(e.range.end));
  return out;
}

const hoverText = (h: Hover | null) => (h ? (h.contents as MarkupContent).value : '');
const labels = (r: CompletionItem[] | CompletionList | null) => (Array.isArray(r) ? r : r?.items ?? []).map((x) => x.label);

describe('language server (memfabric lsp --stdio)', () => {
  let c: Client;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'memfabric-lsp-'));
    c = new Client();
    const init = await c.request<InitializeResult>('initialize', { processId: process.pid, rootUri: uriOf(dir), capabilities: {} });
    const caps = init.capabilities;
    assert.equal(init.serverInfo?.name, 'memfabric');
    assert.ok(caps.hoverProvider);
    assert.ok(caps.completionProvider?.triggerCharacters?.includes(','));
    assert.ok(caps.codeActionProvider);
    assert.ok(caps.definitionProvider && caps.referencesProvider && caps.documentSymbolProvider);
    assert.deepEqual(caps.renameProvider, { prepareProvider: true });
    assert.equal(typeof caps.textDocumentSync, 'object');
    await c.conn.sendNotification('initialized', {});
  });

  after(async () => {
    try {
      if (c.exited === undefined) {
        await c.request('shutdown', null);
        await c.conn.sendNotification('exit');
        const code = await new Promise<number | null>((res) => {
          if (c.exited !== undefined) return res(c.exited);
          const t = setTimeout(() => {
            c.child.kill('SIGKILL');
            res(-1);
          }, 5000);
          c.child.on('exit', (x) => (clearTimeout(t), res(x)));
        });
        assert.equal(code, 0, 'the server exits with 0 after shutdown + exit');
      }
    } finally {
      c.conn.dispose();
      if (c.exited === undefined) c.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('publishes diagnostics on open with code and exact range, and updates them on change', async () => {
    const uri = uriOf(join(dir, 'bad.qemu'));
    await c.open(uri, BAD_QEMU, 'qemu-cmdline');
    const p = await c.diagnostics(uri, (x) => x.diagnostics.some((d) => d.code === 'size-syntax'));
    const d = p.diagnostics.find((x) => x.code === 'size-syntax')!;
    assert.deepEqual(d.range, { start: { line: 1, character: 55 }, end: { line: 1, character: 58 } });
    assert.equal(d.severity, 1);
    assert.equal(d.source, 'memfabric');
    assert.match(d.message, /Parameter 'size' expects a size value/);
    assert.match(d.codeDescription?.href ?? '', /diagnostics\.md#size-syntax$/);

    // Fixed: the error goes away.
    await c.change(uri, BAD_QEMU.replace('1GB', '1G'));
    const fixed = await c.diagnostics(uri, (x) => x.version === c.currentVersion(uri));
    assert.ok(!fixed.diagnostics.some((x) => x.code === 'size-syntax'), JSON.stringify(fixed.diagnostics));
    // Broken elsewhere: a new range.
    const broken = BAD_QEMU.replace('1GB', '1G').replace('-m 2G', '-m 2GiB');
    await c.change(uri, broken);
    const again = await c.diagnostics(uri, (x) => x.version === c.currentVersion(uri));
    const d2 = again.diagnostics.find((x) => x.code === 'size-syntax');
    assert.ok(d2, JSON.stringify(again.diagnostics));
    assert.deepEqual(d2.range, { start: posOf(broken, '2GiB'), end: posOf(broken, '2GiB', 4) });
  });

  it('a burst of changes is published once, for the last version, after the debounce (a cheap document is analyzed as changes arrive, not published)', async () => {
    const uri = uriOf(join(dir, 'burst.qemu'));
    await c.open(uri, FAM_QEMU, 'qemu-cmdline');
    await c.diagnostics(uri, (x) => x.version === 1);
    {
      // Typing: each change well inside the debounce of the one before; the middle ones are broken.
      const steps: [string, RegExp][] = [
        [FAM_QEMU.replace('size=32G', 'size=32GB'), /size-syntax/],
        [FAM_QEMU.replace('size=32G', 'size=3G'), /\(3 GiB\)/],
        [FAM_QEMU.replace('size=32G', 'size=33G'), /\(33 GiB\)/],
        [FAM_QEMU.replace('-m 1G', '-m 1GiB'), /\(32 GiB\)/],
      ];
      for (const [t, hovered] of steps) {
        await c.change(uri, t);
        // The server has analyzed (or analyzes now) this version: hover on the size answers from it.
        const h = await c.request<Hover | null>('textDocument/hover', { textDocument: { uri }, position: posOf(t, 'size=', 6) });
        assert.match(hoverText(h), hovered);
        await new Promise((r) => setTimeout(r, 20));
      }
      const last = await c.diagnostics(uri, (x) => x.version === c.currentVersion(uri));
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(
        c.history(uri).map((p) => p.version),
        [1, c.currentVersion(uri)],
        'after the open, one publish, of the last version',
      );
      const d = last.diagnostics.find((x) => x.code === 'size-syntax');
      assert.ok(d, JSON.stringify(last.diagnostics));
      assert.deepEqual(d.range, { start: posOf(steps[3][0], '1GiB'), end: posOf(steps[3][0], '1GiB', 4) });
    }
  });

  it('code action: the fix of 1GB is 1G, as a WorkspaceEdit', async () => {
    const uri = uriOf(join(dir, 'fix.qemu'));
    await c.open(uri, BAD_QEMU, 'qemu-cmdline');
    const p = await c.diagnostics(uri, (x) => x.diagnostics.some((d) => d.code === 'size-syntax'));
    const d = p.diagnostics.find((x) => x.code === 'size-syntax')!;
    const actions = await c.request<CodeAction[]>('textDocument/codeAction', { textDocument: { uri }, range: d.range, context: { diagnostics: [d] } });
    const a = actions.find((x) => x.title === 'Write 1G');
    assert.ok(a, JSON.stringify(actions));
    assert.equal(a.kind, 'quickfix');
    assert.equal(a.diagnostics?.[0].code, 'size-syntax');
    const edits = (a.edit as WorkspaceEdit).changes![uri];
    assert.deepEqual(edits, [{ range: d.range, newText: '1G' }]);
  });

  it('libvirt XML opened as xml gets diagnostics (with the other document in related); other XML gets none', async () => {
    const lib = join(ROOT, 'test/fixtures/libvirt');
    const bad = uriOf(join(lib, 'ivshmem-768m.xml'));
    const fame = uriOf(join(lib, 'fame.xml'));
    await c.open(bad, readFileSync(join(lib, 'ivshmem-768m.xml'), 'utf8'), 'xml');
    const p = await c.diagnostics(bad, (x) => x.diagnostics.some((d) => d.code === 'ivshmem-size-pow2'));
    const d = p.diagnostics.find((x) => x.code === 'ivshmem-size-pow2')!;
    assert.deepEqual(d.range.start, { line: 13, character: 75 });
    // Two domains of one directory form a cluster: the mismatch points at the other file.
    await c.open(fame, readFileSync(join(lib, 'fame.xml'), 'utf8'), 'xml');
    // (Documents of a cluster are analyzed in URI order: the finding is on the later one, ivshmem-768m.xml.)
    const q = await c.diagnostics(bad, (x) => x.diagnostics.some((d) => d.code === 'fabric-region-mismatch'));
    const m = q.diagnostics.find((x) => x.code === 'fabric-region-mismatch')!;
    assert.ok(m.relatedInformation?.some((r) => r.location.uri === fame && r.location.range.start.line === 13), JSON.stringify(m.relatedInformation));

    const other = uriOf(join(dir, 'pom.xml'));
    await c.open(other, '<?xml version="1.0"?>\n<project><modelVersion>4.0.0</modelVersion><size>1GB</size></project>\n', 'xml');
    const none = await c.diagnostics(other);
    assert.deepEqual(none.diagnostics, []);
    assert.equal(await c.request('textDocument/hover', { textDocument: { uri: other }, position: { line: 1, character: 50 } }), null);
  });

  it('hover: a size in hex and human units; an ivshmem device of the FAME example with its BAR2 address', async () => {
    const uri = uriOf(join(dir, 'fam.qemu'));
    await c.open(uri, FAM_QEMU, 'qemu-cmdline');
    const h = await c.request<Hover>('textDocument/hover', { textDocument: { uri }, position: posOf(FAM_QEMU, '32G', 1) });
    assert.match(hoverText(h), /0x800000000/);
    assert.match(hoverText(h), /32 GiB/);
    assert.deepEqual(h.range, { start: posOf(FAM_QEMU, '32G'), end: posOf(FAM_QEMU, '32G', 3) });

    const famPath = join(ROOT, 'examples/fame-4node.cluster.xml');
    const famText = readFileSync(famPath, 'utf8');
    const fam = uriOf(famPath);
    await c.open(fam, famText, 'memfabric-topology');
    const size = await c.request<Hover>('textDocument/hover', { textDocument: { uri: fam }, position: posOf(famText, '"32G"', 2) });
    assert.match(hoverText(size), /0x800000000 \(32 GiB\)/);
    const dev = await c.request<Hover>('textDocument/hover', { textDocument: { uri: fam }, position: posOf(famText, '<attach', 2) });
    assert.match(hoverText(dev), /BAR2: start \*\*0x800000000\*\*/);
    assert.match(hoverText(dev), /0000:00:0[0-9a-f]\.0/);
    // In the command line: the device, and the backend through the device that maps it.
    const q = await c.request<Hover>('textDocument/hover', { textDocument: { uri }, position: posOf(FAM_QEMU, 'ivshmem-plain', 3) });
    assert.match(hoverText(q), /shm0.*BAR2: start \*\*0x800000000\*\*/);
    // On a diagnostic: the rule's summary.
    const bad = uriOf(join(dir, 'bad.qemu'));
    const r = await c.request<Hover>('textDocument/hover', { textDocument: { uri: bad }, position: { line: 0, character: 31 } });
    assert.match(hoverText(r), /\*\*size-syntax\*\*: QEMU sizes are/);
  });

  it('completion: options, -device drivers, their properties, backend ids, rule-abiding sizes', async () => {
    const uri = uriOf(join(dir, 'complete.qemu'));
    const base = 'qemu-system-x86_64 -M q35,cxl=on -m 1G -object memory-backend-file,id=fam,mem-path=fam.raw,size=32G,share=on -object memory-backend-ram,id=vmem,size=256M \\\n  ';
    const at = async (text: string) => {
      await c.change(uri, text);
      const lines = text.split('\n');
      return c.request<CompletionItem[]>('textDocument/completion', { textDocument: { uri }, position: { line: lines.length - 1, character: lines[lines.length - 1].length } });
    };
    await c.open(uri, base, 'qemu-cmdline');
    assert.ok(labels(await at(base + '-dev')).includes('-device'));
    assert.ok(labels(await at(base + '-device ')).includes('ivshmem-plain'));
    assert.ok(labels(await at(base + '-object ')).includes('memory-backend-file'));
    const props = labels(await at(base + '-device ivshmem-plain,'));
    assert.ok(props.includes('memdev') && props.includes('id') && props.includes('bus'), props.join(' '));
    const ids = labels(await at(base + '-device ivshmem-plain,memdev='));
    assert.deepEqual(ids.sort(), ['fam', 'vmem']);
    const pow2 = labels(await at(base + '-object memory-backend-file,id=x,size='));
    assert.ok(pow2.includes('1G') && pow2.includes('32G') && !pow2.includes('768M'), pow2.join(' '));
    const cxl = labels(await at(base + '-M cxl-fmw.0.size='));
    assert.ok(cxl.includes('768M') && cxl.includes('256M') && !cxl.includes('128M'), cxl.join(' '));

    const topo = uriOf(join(dir, 'c.cluster.xml'));
    const t0 = '<cluster name="c">\n  <fabric id="fam" size="1G" path="f.raw"/>\n  <template id="small" memory="1G"/>\n  ';
    await c.open(topo, t0 + '<', 'memfabric-topology');
    const tc = async (text: string) => {
      await c.change(topo, text);
      const lines = text.split('\n');
      return c.request<CompletionItem[]>('textDocument/completion', { textDocument: { uri: topo }, position: { line: lines.length - 1, character: lines[lines.length - 1].length } });
    };
    const elems = labels(await tc(t0 + '<'));
    assert.ok(elems.includes('fabric') && elems.includes('node') && elems.includes('template'), elems.join(' '));
    assert.ok(labels(await tc(t0 + '<node name="a">\n    <')).includes('attach'));
    const attrs = labels(await tc(t0 + '<fabric '));
    assert.deepEqual(attrs.sort(), ['id', 'master', 'path', 'size']);
    assert.deepEqual(labels(await tc(t0 + '<fabric id="g" master="')), ['on', 'off']);
    assert.deepEqual(labels(await tc(t0 + '<node name="a">\n    <attach fabric="')), ['fam']);
    assert.deepEqual(labels(await tc(t0 + '<node name="a" template="')), ['small']);
    const fsz = labels(await tc(t0 + '<fabric id="g" size="'));
    assert.ok(fsz.includes('32G') && !fsz.includes('768M'));
    const qc = labels(await tc(t0 + '<node name="a">\n    <qemu>-device ivshmem-plain,memdev='));
    assert.deepEqual(qc, ['fam']);
  });

  it('definition, references and rename of a backend id', async () => {
    const uri = uriOf(join(dir, 'ids.qemu'));
    const text = FAM_QEMU.replace(/\n$/, ' \\\n') + '  -numa node,memdev=fam\n';
    await c.open(uri, text, 'qemu-cmdline');
    const defAt = posOf(text, 'id=fam', 3);
    const refAt = posOf(text, 'memdev=fam', 8);
    const def = await c.request<Location[]>('textDocument/definition', { textDocument: { uri }, position: refAt });
    assert.deepEqual(def, [{ uri, range: { start: defAt, end: posOf(text, 'id=fam', 6) } }]);
    const refs = await c.request<Location[]>('textDocument/references', { textDocument: { uri }, position: defAt, context: { includeDeclaration: true } });
    assert.equal(refs.length, 3);
    const prep = await c.request<{ range: unknown; placeholder: string }>('textDocument/prepareRename', { textDocument: { uri }, position: refAt });
    assert.equal(prep.placeholder, 'fam');
    const edit = await c.request<WorkspaceEdit>('textDocument/rename', { textDocument: { uri }, position: refAt, newName: 'shared' });
    const edits = edit.changes![uri];
    assert.equal(edits.length, 3);
    assert.ok(edits.every((e) => e.newText === 'shared'));
    await assert.rejects(c.request('textDocument/rename', { textDocument: { uri }, position: refAt, newName: 'no,comma' }));
    // Topology: a fabric id and its <attach fabric>.
    const famPath = join(ROOT, 'examples/fame-4node.cluster.xml');
    const famText = readFileSync(famPath, 'utf8');
    const fam = uriOf(famPath);
    const r = await c.request<WorkspaceEdit>('textDocument/rename', { textDocument: { uri: fam }, position: posOf(famText, 'fabric="fam"', 9), newName: 'mem' });
    assert.deepEqual(
      r.changes![fam].map((e) => e.range.start),
      [posOf(famText, 'id="fam"', 4), posOf(famText, 'fabric="fam"', 8)],
    );
  });

  it('documentSymbol lists the 4 nodes of the FAME example; memfabric/layout returns its memory map', async () => {
    const famPath = join(ROOT, 'examples/fame-4node.cluster.xml');
    const fam = uriOf(famPath);
    const syms = await c.request<DocumentSymbol[]>('textDocument/documentSymbol', { textDocument: { uri: fam } });
    assert.equal(syms.length, 1);
    assert.equal(syms[0].name, 'fame');
    const nodes = syms[0].children!.filter((s) => s.kind === 2 /* Module */);
    assert.deepEqual(nodes.map((n) => n.name), ['node01', 'node02', 'node03', 'node04']);
    assert.ok(nodes[0].children!.some((x) => x.detail === 'ivshmem-plain'));

    const l = await c.conn.sendRequest(LayoutRequest.type, { uri: fam, node: 'node01' });
    assert.equal(l.nodes.length, 1);
    assert.equal(l.nodes[0].name, 'node01');
    assert.ok(l.nodes[0].iomem.some((e) => e.start === '0x800000000'), JSON.stringify(l.nodes[0].iomem));
    assert.ok(l.nodes[0].bars.some((b) => b.start === '0x800000000' && b.size === '0x800000000' && b.bar === 2));
    // The same JSON as the CLI.
    const { execFileSync } = await import('node:child_process');
    const cli = JSON.parse(execFileSync(process.execPath, [join(ROOT, 'bin/memfabric.js'), 'layout', '--format', 'json', '--node', 'node01', famPath], { encoding: 'utf8' }));
    assert.deepEqual(l, cli);
    await assert.rejects(c.conn.sendRequest(LayoutRequest.type, { uri: fam, node: 'nope' }), /no node 'nope'/);
  });

  it('serves topology XML, libvirt domain XML as plain xml with and without a prologue, QEMU command lines and shell launch scripts', async () => {
    const sub = join(dir, 'served');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub, { recursive: true });
    // Topology.
    const topo = uriOf(join(sub, 'f.cluster.xml'));
    await c.open(topo, '<cluster name="f">\n  <fabric id="fam" size="768M" path="fam.raw"/>\n  <node name="n" machine="q35" memory="1G">\n    <attach fabric="fam"/>\n  </node>\n</cluster>\n', 'memfabric-topology');
    assert.ok((await c.diagnostics(topo, (x) => x.diagnostics.length > 0)).diagnostics.some((d) => d.code === 'ivshmem-size-pow2'));
    // libvirt as xml: without a prologue (a comment first), and with one.
    const raw = readFileSync(join(ROOT, 'test/fixtures/libvirt/ivshmem-768m.xml'), 'utf8');
    assert.ok(!raw.startsWith('<?xml'));
    for (const [name, text] of [
      ['plain.xml', raw],
      ['prologue.xml', '<?xml version="1.0" encoding="UTF-8"?>\n' + raw],
    ]) {
      const d = join(sub, name.replace('.xml', ''));
      mkdirSync(d, { recursive: true });
      const uri = uriOf(join(d, name));
      await c.open(uri, text, 'xml');
      const p = await c.diagnostics(uri, (x) => x.diagnostics.length > 0);
      const pow2 = p.diagnostics.find((x) => x.code === 'ivshmem-size-pow2');
      assert.ok(pow2, `${name}: ${JSON.stringify(p.diagnostics)}`);
      assert.equal(pow2.range.start.line, text.startsWith('<?xml') ? 14 : 13);
    }
    // A shell launch script: the comment that cuts the continued QEMU command.
    const sh = uriOf(join(sub, 'tigon-launch.sh'));
    await c.open(sh, readFileSync(join(ROOT, 'examples/tigon-launch.sh'), 'utf8'), 'shellscript');
    const cut = (await c.diagnostics(sh, (x) => x.diagnostics.length > 0)).diagnostics.find((d) => d.code === 'comment-in-continuation');
    assert.deepEqual(cut?.range.start, { line: 11, character: 4 });
    // Other XML and other shell scripts: nothing at all.
    const other = uriOf(join(sub, 'config.xml'));
    await c.open(other, '<config><size>1GB</size><qemu>-m 1GB</qemu></config>\n', 'xml');
    assert.deepEqual((await c.diagnostics(other)).diagnostics, []);
    assert.deepEqual(await c.request('textDocument/completion', { textDocument: { uri: other }, position: { line: 0, character: 1 } }), []);
    assert.deepEqual(await c.request('textDocument/documentSymbol', { textDocument: { uri: other } }), []);
    const plainSh = uriOf(join(sub, 'build.sh'));
    await c.open(plainSh, '#!/bin/sh\nmake -j4 size=1GB\n', 'shellscript');
    assert.deepEqual((await c.diagnostics(plainSh)).diagnostics, []);
  });

  it('quick fixes, each applied through its WorkspaceEdit: round up to the alignment, share=on, xmlns:qemu, align=2M, cxl=on', async () => {
    const sub = join(dir, 'fixes');
    const cases: { file: string; lang: string; text: string; code: string; title: string; after: RegExp }[] = [
      {
        file: 'round.cluster.xml',
        lang: 'memfabric-topology',
        text: '<cluster name="c">\n  <node name="n" machine="q35" memory="1G">\n    <cxl>\n      <host-bridge id="cxl.1" bus-nr="12">\n        <root-port id="rp0" port="0" chassis="0" slot="2">\n          <type3 id="mem0" size="300M" path="mem0.raw"/>\n        </root-port>\n      </host-bridge>\n      <window size="4G" targets="cxl.1"/>\n    </cxl>\n  </node>\n</cluster>\n',
        code: 'cxl-type3-size-256m',
        title: 'Round up to 512M',
        after: /<type3 id="mem0" size="512M"/,
      },
      {
        file: 'share.qemu',
        lang: 'qemu-cmdline',
        text: 'qemu-system-x86_64 -M q35 -m 1G \\\n  -object memory-backend-file,id=fam,mem-path=fam.raw,size=1G \\\n  -device ivshmem-plain,id=shm0,memdev=fam\n',
        code: 'ivshmem-share-off',
        title: 'Add share=on',
        after: /size=1G,share=on/,
      },
      {
        file: 'ns/fame-no-namespace.xml',
        lang: 'xml',
        text: readFileSync(join(ROOT, 'test/fixtures/libvirt/fame-no-namespace.xml'), 'utf8'),
        code: 'libvirt-qemu-namespace',
        title: 'Declare xmlns:qemu on <domain>',
        after: /<domain xmlns:qemu='http:\/\/libvirt\.org\/schemas\/domain\/qemu\/1\.0'/,
      },
      {
        file: 'align.qemu',
        lang: 'qemu-cmdline',
        text: 'qemu-system-x86_64 -M q35,nvdimm=on -m 1G,slots=2,maxmem=8G \\\n  -object memory-backend-file,id=pm,mem-path=/dev/dax0.0,size=2G,share=on \\\n  -device nvdimm,id=nv0,memdev=pm\n',
        code: 'dax-align',
        title: 'Add align=2M',
        after: /share=on,align=2M/,
      },
      {
        file: 'cxl.qemu',
        lang: 'qemu-cmdline',
        text: 'qemu-system-x86_64 -M q35 -m 1G \\\n  -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1\n',
        code: 'pxb-cxl-without-cxl-on',
        title: 'Add cxl=on to the machine',
        after: /-M q35,cxl=on/,
      },
    ];
    for (const k of cases) {
      // Each in a directory of its own: documents of one directory form a cluster.
      const uri = uriOf(join(sub, k.file.includes('/') ? k.file : `${k.code}/${k.file}`));
      await c.open(uri, k.text, k.lang);
      const p = await c.diagnostics(uri, (x) => x.diagnostics.some((d) => d.code === k.code));
      const d = p.diagnostics.find((x) => x.code === k.code)!;
      const actions = await c.request<CodeAction[]>('textDocument/codeAction', { textDocument: { uri }, range: d.range, context: { diagnostics: [d] } });
      const a = actions.find((x) => x.title === k.title);
      assert.ok(a, `${k.code}: ${JSON.stringify(actions.map((x) => x.title))}`);
      assert.equal(a.kind, 'quickfix');
      assert.equal(a.diagnostics?.[0].code, k.code);
      const fixed = applyLspEdits(k.text, (a.edit as WorkspaceEdit).changes![uri]);
      assert.match(fixed, k.after);
      await c.change(uri, fixed);
      const after = await c.diagnostics(uri, (x) => x.version === c.currentVersion(uri));
      assert.ok(!after.diagnostics.some((x) => x.code === k.code), `${k.code} still there: ${JSON.stringify(after.diagnostics)}`);
    }
  });

  it('hover on a CXL device, its window and an SPM range: where each lands in the guest (start, end, size, window or BAR)', async () => {
    const tigonPath = join(ROOT, 'examples/tigon-cxl-dax.cluster.xml');
    const text = readFileSync(tigonPath, 'utf8');
    const uri = uriOf(tigonPath);
    await c.open(uri, text, 'memfabric-topology');
    const t3 = hoverText(await c.request<Hover>('textDocument/hover', { textDocument: { uri }, position: posOf(text, '<type3', 2) }));
    assert.match(t3, /\*\*cxl-pmem0\*\* `0000:[0-9a-f]{2}:00\.0` BAR0: start \*\*0x[0-9a-f]+\*\*, end 0x[0-9a-f]+, size 0x10000 \(64 KiB\)/);
    assert.match(t3, /CXL persistent 64 GiB behind host bridge cxl\.1: mapped in \*\*CXL Window 0\*\*: start \*\*0x[0-9a-f]+\*\*, end 0x[0-9a-f]+, size 0x1000000000 \(64 GiB\)/);
    const win = hoverText(await c.request<Hover>('textDocument/hover', { textDocument: { uri }, position: posOf(text, '<window', 2) }));
    assert.match(win, /\*\*CXL Window 0\*\*: start \*\*0x[0-9a-f]+\*\*, end 0x[0-9a-f]+, size 0x1000000000 \(64 GiB\), targets cxl\.1/);
    const spm = uriOf(join(dir, 'spm', 's.cluster.xml'));
    const spmText = '<cluster name="s">\n  <node name="n" machine="q35" memory="8G">\n    <spm start="0x100000000" size="1G"/>\n  </node>\n</cluster>\n';
    await c.open(spm, spmText, 'memfabric-topology');
    const h = await c.request<Hover>('textDocument/hover', { textDocument: { uri: spm }, position: posOf(spmText, '<spm', 2) });
    assert.match(hoverText(h), /Soft Reserved \(Specific Purpose Memory\): start \*\*0x100000000\*\*, end 0x13fffffff, size 0x40000000 \(1 GiB\)/);
  });

  it('completion in libvirt domain XML opened as xml: the elements and values memfabric understands', async () => {
    const uri = uriOf(join(dir, 'lv', 'dom.xml'));
    const base = "<domain type='kvm'>\n  <name>n</name>\n  <memory unit='GiB'>4</memory>\n  <devices>\n    ";
    const at = async (text: string) => {
      await c.change(uri, text);
      const lines = text.split('\n');
      return c.request<CompletionItem[]>('textDocument/completion', { textDocument: { uri }, position: { line: lines.length - 1, character: lines[lines.length - 1].length } });
    };
    await c.open(uri, base + '</devices>\n</domain>\n', 'xml');
    await c.diagnostics(uri);
    const devs = await at(base + '<');
    assert.deepEqual(labels(devs), ['shmem', 'memory', 'hostdev', 'acpiEgmMemory']);
    assert.deepEqual(devs[0].textEdit, { range: { start: { line: 4, character: 5 }, end: { line: 4, character: 5 } }, newText: 'shmem' });
    assert.deepEqual(labels(await at(base + "<shmem name='fam'>\n      <model type='")), ['ivshmem-plain', 'ivshmem-doorbell']);
    const attrs = await at(base + '<memory ');
    assert.deepEqual(labels(attrs), ['model', 'access', 'discard']);
    assert.equal(attrs[0].insertTextFormat, 2 /* Snippet */);
    assert.deepEqual(labels(await at(base + "<memory model='")), ['dimm', 'nvdimm']);
  });

  it('survives 2000 mutated and truncated documents, answering after each batch', async () => {
    const sources = [
      ...['fame-4node', 'tigon-cxl-dax', 'cxl-interleave', 'cxl-switch', 'the-machine-40'].map((n) => ({ file: `examples/${n}.cluster.xml`, lang: 'memfabric-topology' })),
      { file: 'examples/tigon-launch.sh', lang: 'shellscript' },
      { file: 'test/fixtures/libvirt/fame.xml', lang: 'xml' },
      { file: 'test/fixtures/libvirt/egm-rfc.xml', lang: 'xml' },
      // The fuzz URIs name files that are never written: the server works on the open text.
    ].map((s) => ({ ...s, text: readFileSync(join(ROOT, s.file), 'utf8'), uri: uriOf(join(dir, 'fuzz', s.file.replace(/\//g, '_'))) }));
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const NOISE = ['<', '>', '"', "'", '=', ',', ',,', '-', '\\', '\\\n', '\n', '#', '$', '${', '&', '&amp;', '<!--', ']]>', 'G', '0x', '{n}', ' ', '\u00e9', '\r\n', '<qemu>', '</node>', 'size=', 'id=fam'];
    const mutate = (t: string): string => {
      switch (rnd(6)) {
        case 0:
          return t.slice(0, rnd(t.length + 1));
        case 1: {
          const a = rnd(t.length + 1);
          return t.slice(0, a) + t.slice(a + 1 + rnd(40));
        }
        case 2: {
          const a = rnd(t.length + 1);
          return t.slice(0, a) + NOISE[rnd(NOISE.length)] + t.slice(a);
        }
        case 3: {
          const a = rnd(t.length + 1);
          const b = a + rnd(200);
          return t.slice(0, b) + t.slice(a, b) + t.slice(b);
        }
        case 4:
          return t.slice(rnd(t.length + 1));
        default: {
          let x = t;
          for (let k = 0; k < 5; k++) {
            const a = rnd(x.length + 1);
            x = x.slice(0, a) + NOISE[rnd(NOISE.length)] + x.slice(a + rnd(3));
          }
          return x;
        }
      }
    };
    for (const s of sources) await c.open(s.uri, s.text, s.lang);
    const current = new Map(sources.map((s) => [s.uri, s.text]));
    const BATCH = 10;
    for (let sent = 0; sent < 2000; ) {
      for (let k = 0; k < BATCH; k++, sent++) {
        const s = sources[rnd(sources.length)];
        // Mostly mutate the original; sometimes keep mutating the broken one.
        const t = mutate(rnd(3) === 0 ? current.get(s.uri)! : s.text);
        current.set(s.uri, t);
        await c.change(s.uri, t);
      }
      const s = sources[rnd(sources.length)];
      const t = current.get(s.uri)!;
      const lines = t.split('\n');
      const line = rnd(lines.length);
      const position = { line, character: rnd(lines[line].length + 1) };
      const h = await c.request<Hover | null>('textDocument/hover', { textDocument: { uri: s.uri }, position });
      assert.ok(h === null || typeof h === 'object');
      await c.request('textDocument/completion', { textDocument: { uri: s.uri }, position });
      await c.request('textDocument/documentSymbol', { textDocument: { uri: s.uri } });
      await c.request('textDocument/codeAction', { textDocument: { uri: s.uri }, range: { start: { line: 0, character: 0 }, end: position }, context: { diagnostics: [] } });
      assert.equal(c.exited, undefined, `server exited: ${c.stderr}`);
    }
    // Still fully working: the original text gives its diagnostics again.
    const fame = sources[0];
    await c.change(fame.uri, fame.text);
    const p = await c.diagnostics(fame.uri, (x) => x.version === c.currentVersion(fame.uri));
    assert.ok(p.diagnostics.every((d: Diagnostic) => d.severity !== 1), JSON.stringify(p.diagnostics));
    const h = await c.request<Hover>('textDocument/hover', { textDocument: { uri: fame.uri }, position: posOf(fame.text, '"32G"', 2) });
    assert.match(hoverText(h), /0x800000000/);
    assert.equal(c.exited, undefined);
    assert.deepEqual(c.errors, [], 'no handler threw');
  });
});

describe('the server as an editor starts it (bin/memfabric.js run as a program)', () => {
  it('runs with the Node options the VS Code client gives it (SERVER_NODE_FLAGS), from its #! line', async () => {
    const bin = join(ROOT, 'bin/memfabric.js');
    assert.equal(readFileSync(bin, 'utf8').split('\n')[0], `#!/usr/bin/env -S node ${SERVER_NODE_FLAGS.join(' ')}`);
    const child = spawn(bin, ['lsp', '--stdio'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    const conn = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    conn.listen();
    try {
      const init = await conn.sendRequest<InitializeResult>('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
      assert.equal(init.serverInfo?.name, 'memfabric');
      const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
      for (const f of SERVER_NODE_FLAGS) assert.ok(argv.includes(f), `${f} in ${JSON.stringify(argv)}`);
      await conn.sendRequest('shutdown', null);
      const exited = new Promise((res) => child.on('exit', res));
      await conn.sendNotification('exit');
      assert.equal(await exited, 0);
    } finally {
      conn.dispose();
      child.kill('SIGKILL');
    }
  });
});

describe('when the server analyzes a changed document: at once, ahead of the debounce, or when it fires (analysisDelay)', () => {
  it('by the middle of its last three analysis times: one slow analysis does not change it, two do', () => {
    assert.equal(analysisDelay(undefined), undefined, 'never analyzed: at the debounce');
    assert.equal(analysisDelay([230]), undefined, 'the 1 MB topology opened: 230 ms');
    assert.equal(analysisDelay([230, 16]), 5, 'then an analysis after an edit: 16 ms, at once');
    assert.equal(analysisDelay([230, 16, 17]), 5);
    assert.equal(analysisDelay([16, 17, 26]), 5, 'one analysis slowed by a collection');
    assert.equal(analysisDelay([17, 26, 15]), 5);
    assert.equal(analysisDelay([17, 26, 210]), 98, 'the document grew dear: the second dear analysis (the middle one, 26 ms)');
    assert.equal(analysisDelay([26, 210, 190]), undefined, 'dear: when the debounce fires');
    assert.equal(analysisDelay([210, 19, 18]), 5, 'and cheap again');
  });
  it('at once up to 20 ms; ahead of the 150 ms debounce by twice the time up to 40 ms (never before 70 ms); dearer at the debounce', () => {
    assert.equal(analysisDelay([20]), 5, 'within the limit, 20 ms');
    assert.equal(analysisDelay([21]), 108);
    assert.equal(analysisDelay([30.2]), 90, 'rounded');
    assert.equal(analysisDelay([40]), 70);
    assert.equal(analysisDelay([40.5]), undefined);
    assert.equal(analysisDelay([45, 25, 80]), undefined, 'the middle, 45 ms');
    assert.equal(analysisDelay([45, 25]), 100, 'of two, the lower');
  });
});
