#!/usr/bin/env node
/**
 * The README's pictures of the VS Code extension, taken from the real thing:
 * build/memfabric.vsix installed into code-server's VS Code (the workbench
 * harness of the tests, out/test/support/workbench.js, in Debian's chromium at
 * 1440x900), a workspace with copies of the examples, real QEMU guests.
 *
 *   npx tsc -p . && node scripts/screenshots.mjs [diagnostics] [memory-map] [cluster]
 *
 * writes docs/images/vscode-diagnostics.png, vscode-memory-map.png and
 * vscode-cluster.png (all three without arguments). The vsix is rebuilt with
 * `npm run package` when it is missing or older than its sources. The cluster
 * picture boots a two-node FAME cluster from the Clusters view and stops it
 * again; nothing is left running, and the temporary workspace is removed
 * (it is kept, with a picture of the workbench, when a step fails).
 * Needs what test/workbench.test.ts needs: scripts/workbench-setup.sh's
 * code-server and chromium, and QEMU 7.2 with the guest image for the cluster.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'docs', 'images');
const HARNESS = join(ROOT, 'out', 'test', 'support', 'workbench.js');
const SHOTS = ['diagnostics', 'memory-map', 'cluster'];

const wanted = process.argv.slice(2);
for (const w of wanted) {
  if (!SHOTS.includes(w)) {
    console.error(`screenshots: unknown picture "${w}" (known: ${SHOTS.join(', ')})`);
    process.exit(2);
  }
}
const take = new Set(wanted.length ? wanted : SHOTS);

if (!existsSync(HARNESS)) {
  console.error(`screenshots: ${HARNESS} is missing: run \`npx tsc -p .\` first`);
  process.exit(2);
}
const require = createRequire(import.meta.url);
const { Workbench, waitFor, workbenchMissing, tempDir, ensureVsix } = require(HARNESS);

const missing = workbenchMissing();
if (missing) {
  console.error(`screenshots: ${missing}`);
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (m) => console.error(`screenshots: ${m}`);

const built = ensureVsix();
if (!built.vsix) {
  console.error(`screenshots: ${built.reason}`);
  process.exit(1);
}

// ------------------------------------------------------------------ the workspace

const dir = tempDir('mf-shots-');
const ws = join(dir, 'memfabric-demo');
const runDir = join(dir, 'run');
mkdirSync(ws);
copyFileSync(built.vsix, join(dir, 'memfabric.vsix')); // a rebuild elsewhere cannot change it under the install

/** The FAME example with two nodes (as the workbench test boots it). */
const fame = readFileSync(join(ROOT, 'examples', 'fame-4node.cluster.xml'), 'utf8').replace('count="4"', 'count="2"');
if (!fame.includes('count="2"')) throw new Error('examples/fame-4node.cluster.xml no longer has count="4"');
writeFileSync(join(ws, 'fame.cluster.xml'), fame);
copyFileSync(join(ROOT, 'examples', 'cxl-interleave.cluster.xml'), join(ws, 'cxl-interleave.cluster.xml'));
/** A FAME variant with a mistake: a 48 MiB fabric, which cannot be an ivshmem BAR (not a power of two). */
const LAB = `<?xml version="1.0" encoding="UTF-8"?>
<!--
  Two q35 nodes share a 32 GiB fabric-attached memory region and a small
  log region, each through ivshmem-plain (BAR2 of a PCI device).
-->
<cluster name="lab">
  <fabric id="fam" size="32G" path="lab-fam.raw"/>
  <fabric id="log" size="48M" path="lab-log.raw"/>
  <node name="node{n:02}" count="2" machine="q35" memory="1G" cpus="1">
    <attach fabric="fam"/>
    <attach fabric="log"/>
  </node>
</cluster>
`;
writeFileSync(join(ws, 'lab.cluster.xml'), LAB);

/** Pids of the QEMU processes whose command line mentions text. */
function qemuPidsMentioning(text) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if ((cmd.startsWith('qemu-system') || cmd.includes('/qemu-system')) && cmd.includes(text)) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

// ------------------------------------------------------------------ helpers

/** Run a palette command if the palette offers it (labels differ a little between VS Code versions). */
async function command(wb, ...labels) {
  for (const label of [...labels, ...labels]) { // each twice: F1 is sometimes lost while a webview had the focus
    // F1 reaches the workbench only when no webview (an iframe) has the focus.
    await wb.page.evaluate(() => { if (document.activeElement instanceof HTMLIFrameElement) document.activeElement.blur(); });
    const ok = await wb.runCommand(label).then(() => true, (e) => { log(`${label}: ${e.message.split('\n')[0]}`); return false; });
    if (ok) return label;
    await wb.page.screenshot({ path: join(dir, 'command-not-run.png') }); // kept with the workspace when the run fails
    await wb.page.keyboard.press('Escape');
  }
  throw new Error(`none of these commands is in the palette: ${labels.join(' | ')}`);
}

async function clearNotifications(wb) {
  await command(wb, 'Notifications: Clear All Notifications');
  await waitFor('no notification toast', async () => (await wb.page.locator('.notifications-toasts .notification-toast').count()) === 0, 10_000);
}

async function closeAllEditors(wb) {
  await command(wb, 'View: Close All Editor Groups', 'View: Close All Editors');
  await command(wb, 'View: Single Column Editor Layout');
}

async function shot(wb, name) {
  mkdirSync(OUT, { recursive: true });
  const file = join(OUT, `vscode-${name}.png`);
  // The mouse where it shows no tooltip; let animations (the hover's fade-in) finish.
  await wb.page.mouse.move(200, 15);
  await sleep(1_000);
  await wb.page.screenshot({ path: file });
  log(`${file} (${Math.round(statSync(file).size / 1024)} KiB)`);
  return file;
}

// ------------------------------------------------------------------ the pictures

async function diagnostics(wb) {
  await closeAllEditors(wb);
  await command(wb, 'View: Show Explorer');
  await wb.openFile('lab.cluster.xml');
  await wb.waitForProblem(/ivshmem BAR2 would be 0x3000000 \(48 MiB\), not a power of two/);
  await clearNotifications(wb);
  // Back in the editor (the Problems panel stays open below it), the hover on size="32G".
  await wb.goTo(7, 28);
  const text = await wb.hover();
  if (!/0x800000000/.test(text) || !/32 GiB/.test(text)) throw new Error(`the hover does not show the placement: ${text}`);
  await shot(wb, 'diagnostics');
  await wb.page.keyboard.press('Escape');
}

async function memoryMap(wb) {
  await closeAllEditors(wb);
  await wb.openFile('cxl-interleave.cluster.xml');
  await command(wb, 'memfabric: Show Memory Map');
  await waitFor('tab "Memory map: cxl2hb"', async () => (await wb.tabTitles()).includes('Memory map: cxl2hb'));
  await command(wb, 'View: Maximize Editor Group and Hide Side Bars');
  if (await wb.page.locator('.part.panel').isVisible()) await command(wb, 'View: Toggle Panel Visibility');
  const frame = await waitFor('the memory map\'s CXL windows', async () => {
    const f = await wb.webviewFrame('h1', 'Memory map: cxl2hb', 10_000);
    const kinds = await f.$$eval('[data-kind]', (es) => es.map((e) => e.getAttribute('data-kind')));
    return kinds.includes('cxl-window') && kinds.includes('ram') ? f : undefined;
  }, 60_000, 500);
  // The map is taller than the window: scroll so that it ends just after the CXL
  // windows, with the PCI windows of the CXL host bridges (the Type 3 devices'
  // BARs) above them; the top at a region's edge.
  await sleep(1_000); // the view re-renders once the diagnostics arrive
  const top = await frame.evaluate(() => {
    const segs = [...document.querySelectorAll('.seg[data-kind]')];
    const cxl = segs.filter((e) => e.getAttribute('data-kind') === 'cxl-window');
    const y = (e) => e.getBoundingClientRect().top + window.scrollY;
    const want = y(cxl[cxl.length - 1]) + cxl[cxl.length - 1].offsetHeight + 60 - window.innerHeight;
    const first = segs.find((e) => y(e) >= want) ?? segs[0];
    window.scrollTo(0, y(first) - 6);
    return `${first.getAttribute('data-kind')} ${first.getAttribute('data-start')}`;
  });
  log(`memory map scrolled to ${top}`);
  await clearNotifications(wb);
  await shot(wb, 'memory-map');
}

async function cluster(wb) {
  await closeAllEditors(wb);
  await wb.openFile('fame.cluster.xml');
  await command(wb, 'memfabric: Focus on Clusters View');
  const item = await wb.treeItem('Clusters', 'fame');
  await waitFor('node rows stopped', async () => (await wb.treeChildren('Clusters', 'fame')).filter((l) => /^node0[12]\b.*stopped/.test(l)).length === 2);
  await wb.inlineAction(item, 'Boot Cluster');
  await waitFor('the cluster ready in the Clusters view', async () => {
    const nodes = await wb.treeChildren('Clusters', 'fame');
    if (nodes.some((l) => /crashed|failed/.test(l))) throw new Error(`boot failed: ${JSON.stringify(nodes)} ${JSON.stringify(await wb.notifications())}`);
    return nodes.filter((l) => /^node0[12]\b.*ready/.test(l)).length === 2;
  }, 400_000, 1_000);
  log('booted');
  // The console of node01, with a command's output.
  const node = await wb.treeItem('Clusters', 'node01', { under: 'fame' });
  await wb.inlineAction(node, 'Open Console');
  await waitFor('terminal "memfabric: fame/node01"', async () => (await wb.terminalNames()).some((n) => n.includes('memfabric: fame/node01')));
  await wb.page.locator('.terminal-wrapper.active .xterm').first().click();
  await wb.page.keyboard.type('lspci -v -d 1af4:1110\n', { delay: 20 });
  await wb.waitForTerminal(/size=32G/, 60_000);
  // lspci beside the editor: predicted and guest.
  await wb.contextMenu(node, 'Show lspci');
  await waitFor('tab "lspci: node01"', async () => (await wb.tabTitles()).includes('lspci: node01'));
  await waitFor('the fam-shm BAR2 row', async () => {
    const frame = await wb.webviewFrame('h1', 'lspci: node01', 10_000);
    const rows = await frame.$$eval('tr', (trs) => trs.map((tr) => tr.getAttribute('data-key') ?? ''));
    return rows.includes('0000:00:03.0 BAR2');
  }, 120_000, 1_000);
  // The topology editor active again, so the status item shows its cluster;
  // narrower, so the lspci table beside it has room.
  await wb.page.locator('.editor-group-container').first().locator('.monaco-editor .view-lines').first().click();
  for (let i = 0; i < 3; i++) await command(wb, 'Decrease Editor Width');
  await command(wb, 'View: Focus First Editor Group');
  // The cluster itself at the top of the narrow editor (not the comment), the cursor on the fabric.
  await wb.goTo(10, 3);
  for (let i = 0; i < 8; i++) await wb.page.keyboard.press('Control+ArrowDown');
  // The fabric's row (the last, at 0x800000000) in view.
  await sleep(1_000);
  const frame = await wb.webviewFrame('h1', 'lspci: node01', 10_000);
  await frame.evaluate(() => document.querySelector('tr[data-key="0000:00:03.0 BAR2"]').scrollIntoView({ block: 'end' }));
  const status = wb.statusBarItem('memfabric.memfabric.memfabric.status');
  await waitFor('status item "2/2 ready"', async () => /2\/2 ready/.test((await status.innerText().catch(() => '')).replace(/\s+/g, ' ')), 30_000);
  await clearNotifications(wb);
  await shot(wb, 'cluster');
  // Stop it as a user would (the CLI stops it again at the end, whatever happened).
  await wb.inlineAction(await wb.treeItem('Clusters', 'fame'), 'Stop Cluster');
  await waitFor('both nodes stopped', async () => (await wb.treeChildren('Clusters', 'fame')).filter((l) => /^node0[12]\b.*stopped/.test(l)).length === 2, 90_000, 1_000);
  log('stopped');
}

// ------------------------------------------------------------------ run

let wb;
let failed = false;
try {
  log(`workbench on ${ws}`);
  wb = await Workbench.start({
    name: 'screenshots', extensions: [join(dir, 'memfabric.vsix')], folder: ws, trust: true,
    settings: {
      'memfabric.runDirectory': runDir,
      'editor.minimap.enabled': false,
      'workbench.tips.enabled': false,
      'breadcrumbs.enabled': true,
      'window.commandCenter': true,
    },
  });
  if (take.has('diagnostics')) await diagnostics(wb);
  if (take.has('cluster')) await cluster(wb);
  if (take.has('memory-map')) await memoryMap(wb);
} catch (e) {
  failed = true;
  if (wb) {
    const f = join(dir, 'failure.png');
    await wb.page.screenshot({ path: f }).catch(() => undefined);
    console.error(`screenshots: failed; the workbench looked like ${f}; code-server log ${wb.logFile}`);
  }
  console.error(e);
} finally {
  // Stop the cluster (a no-op when none runs), then the workbench; leave no QEMU.
  if (take.has('cluster')) {
    spawnSync(process.execPath, [join(ROOT, 'bin', 'memfabric.js'), 'stop', join(ws, 'fame.cluster.xml')], {
      cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], timeout: 90_000, env: { ...process.env, MEMFABRIC_RUN_DIR: runDir },
    });
  }
  await wb?.close({ keep: failed });
  for (const pid of qemuPidsMentioning(ws)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  if (!failed) rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
