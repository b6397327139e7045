/**
 * The VS Code client without a workbench: `npm run package` builds the bundles
 * and build/memfabric.vsix (offline, @vscode/vsce); the vsix holds what the
 * extension needs and nothing else; every command package.json declares is
 * registered by the command table of the bundle (and the other way round);
 * every file package.json points at is in the vsix; the bundled CLI and
 * language server, unpacked outside the repository, find their data files
 * (catalogs, guest-init) and answer (a real JSON-RPC client asks the server
 * for memfabric/layout); the memory-map and guest-view models built from that
 * answer. The workbench tests (code-server + chromium) are elsewhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { LayoutRequest, LayoutResult } from '../server/src/lsp/protocol';
import { buildModel, brokenSet, segmentsOf, addressesIn } from '../client/src/memmap-model';
import { lspciRows, iomemRows, daxRows, cxlRows, rowsTable } from '../client/src/views-model';
import * as cxlModel from '../client/src/cxl-model';
import * as cxlControl from '../server/src/runtime/cxl-control';

const REPO = join(__dirname, '..', '..');
const VSIX = join(REPO, 'build', 'memfabric.vsix');

/** The entries of a zip file (central directory), with their data inflated on demand. */
function readZip(file: string): Map<string, () => Buffer> {
  const buf = readFileSync(file);
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  assert.ok(eocd >= 0, `${file}: no end of central directory: not a zip`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = new Map<string, () => Buffer>();
  for (let i = 0; i < count; i++) {
    assert.equal(buf.readUInt32LE(p), 0x02014b50, 'central directory entry');
    const method = buf.readUInt16LE(p + 10);
    const csize = buf.readUInt32LE(p + 20);
    const nlen = buf.readUInt16LE(p + 28);
    const xlen = buf.readUInt16LE(p + 30);
    const clen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nlen).toString('utf8');
    out.set(name, () => {
      const lnlen = buf.readUInt16LE(local + 26);
      const lxlen = buf.readUInt16LE(local + 28);
      const data = buf.subarray(local + 30 + lnlen + lxlen, local + 30 + lnlen + lxlen + csize);
      return method === 0 ? Buffer.from(data) : inflateRawSync(data);
    });
    p += 46 + nlen + xlen + clen;
  }
  return out;
}

let zip: Map<string, () => Buffer>;
let pkg: any;

test('npm run package writes build/memfabric.vsix offline', { timeout: 180_000 }, () => {
  // (not deleted first: a workbench test may be installing the previous one; the mtime shows this run wrote it)
  const t0 = Date.now() - 2000;
  const r = spawnSync('npm', ['run', 'package'], { cwd: REPO, encoding: 'utf8', env: { ...process.env, npm_config_offline: 'true' } });
  assert.equal(r.status, 0, `npm run package failed:\n${r.stdout}\n${r.stderr}`);
  assert.ok(existsSync(VSIX) && statSync(VSIX).mtimeMs >= t0, 'build/memfabric.vsix was not written');
  zip = readZip(VSIX);
  pkg = JSON.parse(zip.get('extension/package.json')!().toString('utf8'));
  assert.equal(`${pkg.publisher}.${pkg.name}`, 'memfabric.memfabric');
  assert.equal(pkg.main, './dist/extension.js');
});

test('the vsix holds the bundles, the guest-init files and the editor files, and no sources, maps or node_modules', () => {
  assert.ok(zip, 'no vsix');
  const names = [...zip.keys()];
  for (const f of [
    'extension/dist/extension.js', 'extension/dist/server.js', 'extension/dist/memfabric.js',
    'extension/dist/guest-init/init',
    'extension/media/memmap.js', 'extension/media/memmap.css', 'extension/media/views.css', 'extension/media/views.js',
    'extension/syntaxes/memfabric-topology.tmLanguage.json', 'extension/syntaxes/qemu-cmdline.tmLanguage.json',
    'extension/language-configuration/topology.json', 'extension/readme.md', 'extension/docs/diagnostics.md',
  ]) assert.ok(names.includes(f), `${f} missing from the vsix (has: ${names.join(', ')})`);
  // (QEMU's guest agent comes from Debian's package; memfabric ships no agent of its own any more.)
  assert.ok(!names.some((n) => n.includes('memfabric-agent')), 'no memfabric-agent');
  const bad = names.filter((n) => /\.ts$|\.map$|node_modules\/|^extension\/(server|client|test|out|examples|scripts)\//.test(n));
  assert.deepEqual(bad, [], 'files that do not belong in the vsix');
  // the guest-init files are the ones of the source tree (the image cache key hashes them)
  for (const f of readdirSync(join(REPO, 'server/src/runtime/guest-init'))) {
    assert.ok(zip.get(`extension/dist/guest-init/${f}`)!().equals(readFileSync(join(REPO, 'server/src/runtime/guest-init', f))), `dist/guest-init/${f} differs from the source`);
  }
});

test('every file package.json points at is in the vsix', () => {
  assert.ok(pkg, 'no vsix');
  const c = pkg.contributes;
  const refs: string[] = [
    pkg.main,
    ...c.languages.map((l: any) => l.configuration).filter(Boolean),
    ...c.grammars.map((g: any) => g.path),
    ...c.snippets.map((s: any) => s.path),
    ...c.viewsContainers.activitybar.map((v: any) => v.icon),
    ...c.walkthroughs.flatMap((w: any) => w.steps.map((s: any) => s.media.markdown ?? s.media.image)),
  ];
  for (const r of refs) {
    const p = 'extension/' + r.replace(/^\.\//, '');
    assert.ok(zip.has(p), `package.json refers to ${r}, not in the vsix`);
  }
});

/** The ids of the command table in the bundle (client/src/commands.ts COMMANDS, as esbuild emitted it). */
function bundleCommandTable(): string[] {
  const src = zip.get('extension/dist/extension.js')!().toString('utf8');
  const start = src.search(/\bCOMMANDS\s*=\s*\{/);
  assert.ok(start >= 0, 'no COMMANDS table in dist/extension.js');
  // the table's own keys: "memfabric.x": at the first nesting level of the object literal
  let depth = 0;
  const ids: string[] = [];
  for (let i = src.indexOf('{', start); i < src.length; i++) {
    const ch = src[i];
    if (ch === '{' || ch === '(' || ch === '[') depth++;
    else if (ch === '}' || ch === ')' || ch === ']') {
      depth--;
      if (depth === 0) break;
    } else if (depth === 1 && ch === '"') {
      const m = /^"(memfabric\.[A-Za-z]+)"\s*:/.exec(src.slice(i, i + 80));
      if (m) ids.push(m[1]);
      i = src.indexOf('"', i + 1);
    }
  }
  assert.ok(src.includes('registerCommands') && /Object\.entries\(COMMANDS\)/.test(src), 'the bundle does not register the COMMANDS table');
  return ids;
}

test('every command in package.json is registered by the command table, and every table entry is declared', () => {
  assert.ok(pkg, 'no vsix');
  const declared = pkg.contributes.commands.map((c: any) => c.command).sort();
  const table = bundleCommandTable().sort();
  assert.deepEqual(table, declared);
  // the contract's ids and titles
  const contract: Record<string, string> = {
    'memfabric.bootCluster': 'Boot Cluster', 'memfabric.bootNode': 'Boot Node', 'memfabric.stopCluster': 'Stop Cluster',
    'memfabric.restartCluster': 'Restart Cluster', 'memfabric.openConsole': 'Open Console', 'memfabric.showLspci': 'Show lspci',
    'memfabric.showCxl': 'Show CXL', 'memfabric.showDax': 'Show DAX', 'memfabric.showIomem': 'Show /proc/iomem',
    'memfabric.verifyLayout': 'Verify Layout', 'memfabric.showMemoryMap': 'Show Memory Map', 'memfabric.buildImage': 'Build Guest Image',
    'memfabric.refreshClusters': 'Refresh Clusters',
    'memfabric.cxlInjectPoison': 'Inject Poison…', 'memfabric.cxlInjectEvent': 'Inject Event…', 'memfabric.cxlInjectError': 'Inject Error…',
  };
  for (const [id, title] of Object.entries(contract)) {
    const c = pkg.contributes.commands.find((x: any) => x.command === id);
    assert.ok(c, `${id} not declared`);
    assert.equal(c.title, title, id);
    assert.equal(c.category, 'memfabric', id);
  }
  // menus only name declared commands; process-starting commands need a trusted workspace
  for (const [menu, items] of Object.entries(pkg.contributes.menus) as [string, any[]][]) {
    for (const it of items) assert.ok(declared.includes(it.command), `menu ${menu} names undeclared ${it.command}`);
  }
  for (const id of ['bootCluster', 'bootNode', 'stopCluster', 'restartCluster', 'openConsole', 'showLspci', 'verifyLayout', 'buildImage', 'cxlInjectPoison', 'cxlInjectEvent', 'cxlInjectError']) {
    assert.match(pkg.contributes.commands.find((x: any) => x.command === `memfabric.${id}`).enablement ?? '', /isWorkspaceTrusted/, id);
  }
  // stop only where a cluster runs
  const stopWhen = pkg.contributes.menus.commandPalette.find((m: any) => m.command === 'memfabric.stopCluster').when;
  assert.match(stopWhen, /memfabric\.activeClusterRunning/);
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
  assert.deepEqual(pkg.contributes.views.memfabric.map((v: any) => [v.id, v.name]), [['memfabric.clusters', 'Clusters'], ['memfabric.cxlEvents', 'CXL Events']]);
  // the CXL actions sit on the Type 3 devices of running nodes in the Clusters view (SymbolItem's contextValue)
  for (const id of ['cxlInjectPoison', 'cxlInjectEvent', 'cxlInjectError']) {
    const m = pkg.contributes.menus['view/item/context'].find((x: any) => x.command === `memfabric.${id}`);
    assert.equal(m?.when, 'view == memfabric.clusters && viewItem == cxl-type3-ready', id);
  }
  assert.deepEqual(Object.keys(pkg.contributes.configuration.properties).filter((k) => !/trace|Poll/.test(k)).sort(), ['memfabric.acceleration', 'memfabric.backend', 'memfabric.guestImageDir', 'memfabric.libvirtUri', 'memfabric.qemuBinary', 'memfabric.runDirectory']);
  // Every machine-level setting (a binary to run, a libvirt to ask, where to write) is out of an untrusted workspace's reach.
  assert.deepEqual([...pkg.capabilities.untrustedWorkspaces.restrictedConfigurations].sort(), ['memfabric.acceleration', 'memfabric.backend', 'memfabric.guestImageDir', 'memfabric.libvirtUri', 'memfabric.qemuBinary', 'memfabric.runDirectory']);
});

let unpacked: string;

/** The guest image key the CLI computes (`memfabric image`), without building: the child is stopped at "building from". */
function imageKey(bin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [bin, 'image'], { cwd: unpacked, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    let done = false;
    p.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      const m = /image ([0-9a-f]{8,}): (cached in|building from)/.exec(err);
      if (m && !done) {
        done = true;
        if (m[2] === 'building from') p.kill('SIGKILL');
        resolve(m[1]);
      }
    });
    p.on('close', (code) => {
      if (!done) reject(new Error(`memfabric image (${bin}) exited ${code} without a key:\n${err}`));
    });
  });
}

test('the CLI bundle runs from the unpacked extension, outside the repository: check, layout, and the guest image key (guest-init found)', { timeout: 120_000 }, async () => {
  assert.ok(zip, 'no vsix');
  unpacked = mkdtempSync(join(tmpdir(), 'memfabric-vsix-'));
  for (const [name, data] of zip) {
    if (!name.startsWith('extension/')) continue;
    const to = join(unpacked, name);
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, data());
  }
  const cli = join(unpacked, 'extension', 'dist', 'memfabric.js');
  const ex = join(REPO, 'examples', 'tigon-cxl-dax.cluster.xml');
  const check = spawnSync(process.execPath, [cli, 'check', '--format', 'json', ex], { cwd: unpacked, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  assert.equal(JSON.parse(check.stdout).files.length, 1);
  const layout = spawnSync(process.execPath, [cli, 'layout', '--format', 'json', ex], { cwd: unpacked, encoding: 'utf8' });
  assert.equal(layout.status, 0, layout.stderr);
  assert.ok(JSON.parse(layout.stdout).nodes[0].iomem.some((e: any) => /^CXL Window/.test(e.name)), 'no CXL window in the layout');
  // the image key hashes the guest-init files: the unpacked CLI must find them and compute the repository CLI's key
  // (read from its first progress line; a build that would start is stopped there: no download in this test)
  const a = await imageKey(cli);
  const b = await imageKey(join(REPO, 'bin', 'memfabric.js'));
  assert.equal(a, b, 'the unpacked CLI computes another image key: its guest-init files differ or were not found');
});

let tigon: LayoutResult;
let fame: LayoutResult;

test('the language server bundle answers memfabric/layout to a real JSON-RPC client', { timeout: 60_000 }, async () => {
  assert.ok(unpacked, 'not unpacked');
  const proc = spawn(process.execPath, [join(unpacked, 'extension', 'dist', 'server.js'), '--stdio'], { cwd: unpacked, stdio: ['pipe', 'pipe', 'inherit'] });
  const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
  conn.listen();
  try {
    const init: any = await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
    assert.ok(init.capabilities.documentSymbolProvider);
    await conn.sendNotification('initialized', {});
    tigon = await conn.sendRequest(LayoutRequest.type, { uri: pathToFileURL(join(REPO, 'examples', 'tigon-cxl-dax.cluster.xml')).toString(), agent: true });
    fame = await conn.sendRequest(LayoutRequest.type, { uri: pathToFileURL(join(REPO, 'examples', 'fame-4node.cluster.xml')).toString(), node: 'node02', agent: true });
    assert.equal(tigon.nodes[0].name, 'tigon');
    assert.deepEqual(fame.nodes.map((n) => n.name), ['node02']);
    // a published diagnostic links to its rule in the docs packaged with the extension
    const published = new Promise<any>((res) => conn.onNotification('textDocument/publishDiagnostics', (p: any) => p.diagnostics.length && res(p)));
    const uri = pathToFileURL(join(unpacked, 'bad.qemu')).toString();
    await conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'qemu-cmdline', version: 1, text: 'qemu-system-x86_64 -m 1Q\n' } });
    const p = await published;
    const href: string = p.diagnostics[0].codeDescription?.href ?? '';
    assert.match(href, /\/extension\/docs\/diagnostics\.md#size-syntax$/, `no link into the packaged docs: ${JSON.stringify(p.diagnostics[0])}`);
    await conn.sendRequest('shutdown');
    await conn.sendNotification('exit');
  } finally {
    conn.dispose();
    proc.kill();
  }
});

test('memory-map model: contiguous segments from 0, kinds, BARs in their window, the huge hole broken, diagnostics placed by address', () => {
  assert.ok(fame && tigon, 'no layout');
  const node = fame.nodes[0];
  const m = buildModel(node, [
    { message: 'ivshmem-plain: BAR2 of 0x800000000 (32 GiB) at 0x800000000 (32 GiB)–0xfffffffff (~64 GiB).', code: 'layout-placement', severity: 'information', line: 3 },
    { message: 'something unrelated', code: 'unknown-property', severity: 'warning', line: 5 },
  ]);
  let next = 0n;
  for (const s of m.segments) {
    assert.equal(BigInt(s.start), next, `gap or overlap before ${s.start}`);
    assert.ok(BigInt(s.end) >= BigInt(s.start));
    next = BigInt(s.end) + 1n;
    assert.match(s.start, /^0x[0-9a-f]+$/);
  }
  const kinds = new Set(m.segments.map((s) => s.kind));
  for (const k of ['ram', 'hole', 'pci-window', 'reserved']) assert.ok(kinds.has(k as any), `no ${k} segment`);
  const win = m.segments.find((s) => s.start === '0x800000000');
  assert.ok(win && win.kind === 'pci-window', 'the 64-bit PCI window');
  assert.ok(win!.bars.some((b) => b.start === '0x800000000' && b.end === '0xfffffffff' && /fam/.test(b.label)), 'the fabric BAR2 inside its window');
  // 0x1000004000..0xfcffffffff (~1 TiB) dwarfs the rest: broken; RAM stays proportional
  const hole = m.segments.find((s) => s.kind === 'hole' && s.start === '0x1000004000');
  assert.equal(hole?.scale, 'broken');
  assert.equal(win!.scale, 'proportional');
  assert.ok(win!.height > m.segments.find((s) => s.kind === 'ram' && s.start === '0x100000')!.height, 'the 32 GiB window drawn taller than 1 GiB of RAM');
  // the placement diagnostic sits on the window and the BAR, the unrelated warning is not listed
  assert.equal(m.diagnostics.length, 1);
  assert.deepEqual(m.diagnostics[0].placed, [m.segments.indexOf(win!)]);
  assert.ok(win!.bars.find((b) => b.start === '0x800000000')!.diags.includes(0));
  // tigon: the CXL window is a segment of its own
  const t = buildModel(tigon.nodes[0]);
  assert.ok(t.segments.some((s) => s.kind === 'cxl-window' && s.start === '0x2290000000' && s.size === '64 GiB' && s.scale === 'proportional'));
  assert.equal(t.segments.find((s) => s.kind === 'hole' && s.start === '0x3ac0000000')?.scale, 'broken', '777 GiB of nothing above the PCI window');
  assert.equal(t.segments.find((s) => s.kind === 'ram' && s.start === '0x100000000')?.scale, 'proportional', '14 GiB of RAM to scale');
  assert.deepEqual([...brokenSet([1n, 2n, 1000n])], [2]);
  assert.deepEqual([...brokenSet([10n, 10n, 10n])], []);
  assert.deepEqual([...brokenSet([10n, 200n, 30n], [false, true, false])], [1]);
  assert.deepEqual(addressesIn('BAR2 of 0x800000000 (32 GiB) at 0x1000000000 (64 GiB)'), [0x1000000000n]);
  assert.ok(segmentsOf(node).length === m.segments.length);
});

test('guest-view rows: equal rows agree, a moved BAR, a missing iomem entry and a missing dax device are marked diff', () => {
  assert.ok(fame && tigon, 'no layout');
  const node = fame.nodes[0];
  const guest = {
    node: 'node02',
    devices: node.bars.reduce((acc: any[], b) => {
      let d = acc.find((x) => x.bdf === b.bdf.replace(/^0000:/, ''));
      if (!d) acc.push((d = { bdf: b.bdf.replace(/^0000:/, ''), vendorDevice: '1af4:1110', class: '0500', description: b.device, bars: [] }));
      d.bars.push({ bar: b.bar, start: b.start, size: b.size, bits: b.bits, prefetchable: b.prefetchable });
      return acc;
    }, []),
  };
  let rows = lspciRows(node, guest);
  assert.ok(rows.length >= node.bars.length);
  assert.ok(rows.every((r) => !r.diff), 'identical BARs marked');
  guest.devices[0].bars[0].start = '0x' + (BigInt(guest.devices[0].bars[0].start) + 0x100000n).toString(16);
  rows = lspciRows(node, guest);
  assert.equal(rows.filter((r) => r.diff).length, 1);
  assert.match(rowsTable(rows), /<tr class="diff"/);
  const iom = { node: 'node02', iomem: node.iomem.slice(1) };
  const irows = iomemRows(node, iom);
  assert.deepEqual(irows.filter((r) => r.diff).map((r) => r.key), [node.iomem[0].start]);
  const soft = { ...node, iomem: [...node.iomem, { start: '0x140000000', end: '0x17fffffff', name: 'Soft Reserved' }] };
  assert.deepEqual(daxRows(soft, [{ chardev: 'dax0.0', size: 0x40000000 }]).map((r) => r.diff), [false]);
  assert.deepEqual(daxRows(soft, []).map((r) => r.diff), [true]);
  const t = tigon.nodes[0];
  const crow = cxlRows(t, [{ buses: [{ bus: 'root0', decoders: [{ decoder: 'decoder0.0', resource: 0x2290000000, size: 64 * 2 ** 30, interleave_ways: 1 }] }] }]);
  assert.deepEqual(crow.map((r) => r.diff), [false]);
  assert.deepEqual(cxlRows(t, []).map((r) => r.diff), [true]);
});

test('CXL view model on what a real guest printed (cxl-interleave booted: cxl list -v through memfabric view): both windows agree, one row per memdev', () => {
  const dir = join(REPO, 'test', 'fixtures', 'guest-views');
  const guest = JSON.parse(readFileSync(join(dir, 'cxl-interleave.view-cxl.json'), 'utf8'));
  const layout = (JSON.parse(readFileSync(join(dir, 'cxl-interleave.layout.json'), 'utf8')) as LayoutResult).nodes[0];
  const rows = cxlRows(layout, guest);
  assert.deepEqual(
    rows.map((r) => [r.label, r.diff]),
    [['CXL Window 0', false], ['CXL Window 1', false], ['memdev mem0', false], ['memdev mem1', false]],
  );
  assert.equal(rows[0].guest, rows[0].predicted);
  assert.match(rows[2].guest ?? '', /^pmem 256 MiB/);
  // the recorded windows really are the layout's
  const moved = { ...layout, iomem: layout.iomem.map((e) => (e.name === 'CXL Window 1' ? { ...e, start: '0x300000000', end: '0x3ffffffff' } : e)) };
  assert.deepEqual(cxlRows(moved, guest).filter((r) => r.diff).map((r) => r.key), ['0x290000000', '0x300000000']);
});

test('cleanup', () => {
  if (unpacked) rmSync(unpacked, { recursive: true, force: true });
});

test('the CXL actions offer the choices the CLI takes', () => {
  assert.deepEqual(cxlModel.EVENT_LOGS, [...cxlControl.EVENT_LOGS]);
  assert.deepEqual(cxlModel.UNCOR_ERROR_TYPES, [...cxlControl.UNCOR_ERROR_TYPES]);
  assert.deepEqual(cxlModel.COR_ERROR_TYPES, [...cxlControl.COR_ERROR_TYPES]);
  for (const k of cxlModel.EVENT_KINDS) assert.doesNotThrow(() => cxlControl.parseCxlArgs(['event', k, 'f', 'n', 'd']), k);
});
