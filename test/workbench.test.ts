/**
 * memfabric end to end in a real VS Code workbench (code-server's VS Code 1.100
 * in Debian's chromium, test/support/workbench.ts): build/memfabric.vsix is
 * installed with `code-server --install-extension`, a two-node copy of the FAME
 * example is opened in a trusted workspace, and everything is done and read
 * through the UI a user has: the Problems panel, completion, hover, the Clusters
 * view (boot, console, lspci, memory map, stop), the console terminal and the
 * webviews. Real QEMU boots real guests. A second workbench keeps the workspace
 * untrusted and checks that nothing can be started there.
 *
 * Identifiers come from the contract between the client and these tests
 * (commands, view, terminal names, webview titles, data-kind regions).
 * Screenshots go to test-artifacts/workbench/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fame2, hasQemu, runCliWithRunDir } from './support/cli';
import { ARTIFACTS, ensureVsix, REPO, workbenchDirs, VSIX, waitFor, Workbench, workbenchMissing } from './support/workbench';


const missing = workbenchMissing();
const built = missing ? {} : ensureVsix();
const skip = missing ?? built.reason ?? (!hasQemu() ? 'qemu-system-x86_64 missing' : undefined);

/** Save a screenshot when a step fails, and say where it is. */
async function step<T>(wb: Workbench, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    const v = await fn();
    rmSync(join(ARTIFACTS, `e2e-${name}-failure.png`), { force: true }); // from an earlier run
    return v;
  } catch (e) {
    const shot = await wb.screenshot(`e2e-${name}-failure`).catch(() => '(no screenshot)');
    // Leave no menu or quick pick open for the next step.
    for (let i = 0; i < 3; i++) await wb.page.keyboard.press('Escape').catch(() => undefined);
    const err = e as Error;
    err.message += `\n  screenshot: ${shot}\n  code-server log: ${wb.logFile}\n  notifications: ${JSON.stringify(await wb.notifications().catch(() => []))}\n` +
      wb.extensionHostLog().split('\n').filter((l) => /memfabric|error|Error/.test(l)).slice(-30).join('\n');
    throw err;
  }
}

/** Pids of the QEMU processes whose command line mentions `text`. */
function qemuPidsMentioning(text: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.startsWith('qemu-system') || cmd.includes('/qemu-system')) if (cmd.includes(text)) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

describe('memfabric in a real VS Code workbench (trusted workspace)', { skip, timeout: 600_000 }, () => {
  let dir = '';
  let ws = '';
  let runDir = '';
  let cluster = '';
  let wb: Workbench | undefined;
  let failed = false;

  before(async () => {
    let extension: string;
    ({ dir, ws, runDir, extension } = workbenchDirs('mf-e2e-', built.vsix!));
    cluster = fame2(ws); // ws/fame.cluster.xml, two nodes
    // A copy (cluster "broken") with an error: the attach names a fabric that does not exist (line 12, column 21).
    const text = readFileSync(cluster, 'utf8');
    const broken = text.replace('<attach fabric="fam"/>', '<attach fabric="fabx"/>').replace('<cluster name="fame">', '<cluster name="broken">');
    assert.equal(broken.split('\n').length, text.split('\n').length);
    assert.ok(broken.includes('fabx') && broken.includes('"broken"'), 'the FAME example no longer has <cluster name="fame"> and <attach fabric="fam"/>');
    writeFileSync(join(ws, 'broken.cluster.xml'), broken);
    wb = await Workbench.start({
      name: 'e2e', extensions: [extension], folder: ws, trust: true,
      settings: { 'memfabric.runDirectory': runDir },
    });
  });

  after(async () => {
    await wb?.close({ keep: failed });
    // Whatever the tests did, nothing of this cluster is left running.
    if (cluster) runCliWithRunDir(runDir, ['stop', cluster], { timeoutMs: 60_000 });
    for (const pid of qemuPidsMentioning(ws)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    if (!failed) rmSync(dir, { recursive: true, force: true });
  });

  const it = (name: string, fn: (wb: Workbench) => Promise<void>, timeout = 120_000) =>
    test(name, { timeout }, async () => {
      try { await step(wb!, name.split(' ').slice(0, 3).join('-').replace(/[^\w-]/g, ''), () => fn(wb!)); } catch (e) { failed = true; throw e; }
    });

  it('an error in a topology file is in the Problems panel, and goes when the text is fixed', async (wb) => {
    await wb.openFile('broken.cluster.xml');
    await waitFor('language mode memfabric topology', async () => (await wb.statusBarItem('status.editor.mode').innerText()).trim() === 'memfabric topology');
    const rows = await wb.waitForProblem(/^Error: no <fabric id="fabx"> in this cluster/);
    const row = rows.find((r) => /^Error: no <fabric id="fabx">/.test(r))!;
    assert.match(row, /at line 12 and character 21\b/, row);
    await wb.screenshot('e2e-problems');
    // Fix it in the editor (not on disk): the server follows the document.
    await wb.goTo(12, 21);
    for (let i = 0; i < 4; i++) await wb.page.keyboard.press('Shift+ArrowRight');
    await wb.type('fam');
    await waitFor('the error to leave the Problems panel', async () => {
      const now = await wb.page.locator('.markers-panel .monaco-list-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') ?? ''));
      return !now.some((r) => /fabx/.test(r));
    }, 60_000, 500);
  });

  it('completion offers the elements a node may hold', async (wb) => {
    // Still in broken.cluster.xml (now fixed): a new line inside <node>.
    await wb.goTo(11, 3);
    await wb.page.keyboard.press('End');
    await wb.page.keyboard.press('Enter');
    await wb.type('<');
    const items = await wb.completions();
    await wb.screenshot('e2e-completion');
    await wb.page.keyboard.press('Escape');
    for (const want of ['attach', 'cxl', 'numa']) assert.ok(items.includes(want), `completion lacks ${want}: ${JSON.stringify(items)}`);
    assert.ok(!items.includes('node'), `completion inside <node> offers <node>: ${JSON.stringify(items)}`);
    await wb.runCommand('File: Revert File');
  });

  it('hover on the fabric size tells where the fabric lands in each guest', async (wb) => {
    await wb.openFile('fame.cluster.xml');
    await wb.goTo(10, 28); // size="32G"
    const text = await wb.hover();
    await wb.screenshot('e2e-hover');
    await wb.page.keyboard.press('Escape');
    assert.match(text, /0x800000000/, text);
    assert.match(text, /32 GiB/, text);
    assert.match(text, /node01/, text);
  });

  it('Boot Cluster from the Clusters view boots both nodes', async (wb) => {
    await wb.runCommand('memfabric: Focus on Clusters View');
    const item = await wb.treeItem('Clusters', 'fame');
    await waitFor('node rows stopped', async () => (await wb.treeChildren('Clusters', 'fame')).filter((l) => /^node0[12]\b.*stopped/.test(l)).length === 2);
    await wb.inlineAction(item, 'Boot Cluster');
    await waitFor(`the cluster ready in the Clusters view`,
      async () => {
        const labels = await wb.treeLabels('Clusters');
        const nodes = await wb.treeChildren('Clusters', 'fame');
        if (nodes.some((l) => /crashed|failed/.test(l))) throw new Error(`boot failed: ${JSON.stringify(labels)} ${JSON.stringify(await wb.notifications())}`);
        return labels.some((l) => /^fame\b.*2\/2 ready/.test(l)) && nodes.filter((l) => /^node0[12]\b.*ready/.test(l)).length === 2;
      }, 400_000, 1_000);
    const notes = await wb.notifications();
    assert.ok(notes.some((n) => /fame: 2 node\(s\) ready/.test(n)), `no success notification: ${JSON.stringify(notes)}`);
    // The contract's status item `memfabric.status`; the workbench prefixes its id with the extension's.
    const status = wb.statusBarItem('memfabric.memfabric.memfabric.status');
    await waitFor('status bar item "memfabric… 2/2 ready"', async () => {
      const t = (await status.innerText()).replace(/\s+/g, ' ').trim();
      return t.startsWith('memfabric') && /2\/2 ready/.test(t);
    });
    // ... and names the QEMU the files are judged for (the server's profile of the QEMU on PATH).
    assert.match((await status.innerText()).replace(/\s+/g, ' '), /QEMU 7\.2\.\d+/);
    assert.equal(qemuPidsMentioning(ws).length, 2, 'two QEMU processes for the workspace');
    await wb.screenshot('e2e-booted');
  }, 420_000);

  it('Open Console shows the node\'s serial console in a terminal that takes input', async (wb) => {
    const node = await wb.treeItem('Clusters', 'node01', { under: 'fame' });
    await wb.inlineAction(node, 'Open Console');
    await waitFor('terminal "memfabric: fame/node01"', async () => (await wb.terminalNames()).some((n) => n.includes('memfabric: fame/node01')));
    await wb.page.locator('.part.panel .terminal-wrapper.active').first().waitFor({ state: 'visible', timeout: 15_000 })
      .catch(() => { throw new Error('Open Console created the terminal but the Terminal panel is not shown'); });
    await wb.page.locator('.terminal-wrapper.active .xterm').first().click();
    await wb.page.keyboard.type('echo mf-$((6*7))\n', { delay: 20 });
    await wb.waitForTerminal(/^mf-42\s*$/m, 60_000);
    await wb.screenshot('e2e-console');
  });

  it('Show lspci shows the fabric BAR where the layout predicted it, without differences', async (wb) => {
    const node = await wb.treeItem('Clusters', 'node01', { under: 'fame' });
    await wb.contextMenu(node, 'Show lspci');
    await waitFor('tab "lspci: node01"', async () => (await wb.tabTitles()).includes('lspci: node01'));
    // The view re-renders when the guest answers (VS Code swaps the webview's frame): find it afresh each time.
    const lspciFrame = () => wb.webviewFrame('h1', 'lspci: node01', 10_000);
    const bar2 = await waitFor('the fam-shm BAR2 row', async () => {
      const rows = await (await lspciFrame()).$$eval('tr', (trs) => trs.map((tr) => ({ cls: tr.getAttribute('class') ?? '', key: tr.getAttribute('data-key') ?? '', text: (tr.textContent ?? '').replace(/\s+/g, ' ') })));
      return rows.find((r) => r.key === '0000:00:03.0 BAR2');
    }, 120_000, 1_000);
    assert.match(bar2.text, /0x800000000.*0x800000000/, `predicted and guest columns: ${bar2.text}`);
    const diffs = await waitFor('the rows', async () => (await lspciFrame()).$$eval('tr.diff', (trs) => trs.map((tr) => (tr.textContent ?? '').replace(/\s+/g, ' '))), 20_000);
    assert.deepEqual(diffs, [], 'rows marked as differing');
    await wb.screenshot('e2e-lspci');
  }, 180_000);

  it('Show Memory Map draws the node\'s address space with the fabric BAR', async (wb) => {
    const node = await wb.treeItem('Clusters', 'node01', { under: 'fame' });
    await wb.contextMenu(node, 'Show Memory Map');
    await waitFor('tab "Memory map: node01"', async () => (await wb.tabTitles()).includes('Memory map: node01'));
    const regions = await waitFor('the memory map\'s regions', async () => {
      const frame = await wb.webviewFrame('h1', 'Memory map: node01', 10_000);
      const r = await frame.$$eval('[data-kind]', (es) => es.map((e) => `${e.getAttribute('data-kind')} ${e.getAttribute('data-start')} ${e.getAttribute('data-end')}`));
      return r.length > 0 ? r : undefined;
    }, 60_000, 500);
    assert.ok(regions.includes('bar 0x800000000 0xfffffffff'), `no 32 GiB fabric BAR at 0x800000000: ${regions.join('; ')}`);
    assert.ok(regions.some((r) => /^ram 0x100000 0x/.test(r)), `no RAM from 1 MiB: ${regions.join('; ')}`);
    assert.ok(regions.some((r) => r.startsWith('pci-window ')), `no PCI window: ${regions.join('; ')}`);
    // The background probe ran the QEMU on PATH on the resting file: the map says QEMU confirmed it.
    const confirmed = await waitFor('"confirmed by QEMU" in the header', async () => {
      const frame = await wb.webviewFrame('h1', 'Memory map: node01', 10_000);
      const t = await frame.$$eval('p.confirmed', (ps) => ps.map((p) => p.textContent ?? ''));
      return t.length ? t[0] : undefined;
    }, 30_000, 500);
    assert.match(confirmed, /^confirmed by QEMU 7\.2\.\d+/);
    await wb.screenshot('e2e-memory-map');
  });

  it('Stop Cluster stops both nodes, and the console says so', async (wb) => {
    await wb.runCommand('memfabric: Focus on Clusters View');
    const item = await wb.treeItem('Clusters', 'fame');
    await wb.inlineAction(item, 'Stop Cluster');
    await waitFor(`both nodes stopped in the Clusters view`,
      async () => (await wb.treeChildren('Clusters', 'fame')).filter((l) => /^node0[12]\b.*stopped/.test(l)).length === 2, 90_000, 1_000);
    await waitFor('no QEMU left for the workspace', () => qemuPidsMentioning(ws).length === 0, 30_000);
    // The console terminal stays (with what it showed) and tells that the node went away.
    await wb.waitForTerminal(/the console of fame\/node01 closed/, 30_000);
    await wb.screenshot('e2e-stopped');
  });
});

describe('memfabric in a real VS Code workbench (untrusted workspace)', { skip, timeout: 300_000 }, () => {
  test('checks the file but starts nothing', { timeout: 240_000 }, async () => {
    const { dir, ws, runDir, extension } = workbenchDirs('mf-e2e-untrusted-', built.vsix!);
    fame2(ws);
    const wb = await Workbench.start({
      name: 'untrusted', extensions: [extension], folder: ws, trust: false,
      settings: { 'memfabric.runDirectory': runDir },
    });
    let failed = false;
    try {
      await step(wb, 'untrusted', async () => {
        await wb.openFile('fame.cluster.xml');
        // The language server runs in Restricted Mode: the placement information is there.
        await wb.waitForProblem(/^Info: fam-shm: BAR2 of 0x800000000 \(32 GiB\) at 0x800000000/);
        const labels = await wb.paletteLabels('memfabric:');
        assert.ok(labels.includes('memfabric: Show Memory Map'), `palette: ${JSON.stringify(labels)}`);
        for (const c of ['Boot Cluster', 'Boot Node', 'Build Guest Image']) {
          assert.ok(!labels.includes(`memfabric: ${c}`), `"${c}" offered in an untrusted workspace: ${JSON.stringify(labels)}`);
        }
        await wb.runCommand('memfabric: Focus on Clusters View');
        const item = await wb.treeItem('Clusters', 'fame');
        await item.hover();
        const boot = item.locator('.actions .action-label[aria-label="Boot Cluster"]');
        if (await boot.count()) {
          assert.match((await boot.first().getAttribute('class')) ?? '', /\bdisabled\b/, 'Boot Cluster is enabled in an untrusted workspace');
          await boot.first().click({ force: true });
        }
        await new Promise((r) => setTimeout(r, 5_000));
        assert.deepEqual(qemuPidsMentioning(ws), [], 'QEMU started in an untrusted workspace');
        assert.ok(!existsSync(runDir) || readdirSync(runDir).length === 0, `run directory written in an untrusted workspace: ${runDir}`);
        // The client logs every CLI it forks as "$ memfabric ..." in its output channel: none here.
        const log = wb.outputChannelLog('memfabric');
        assert.match(log, /language server started/, `the memfabric output channel's log: ${log}`);
        assert.doesNotMatch(log, /^\$ memfabric /m, 'a memfabric CLI was run in an untrusted workspace');
        await wb.screenshot('e2e-untrusted');
      });
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      await wb.close({ keep: failed });
      for (const pid of qemuPidsMentioning(ws)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      if (!failed) rmSync(dir, { recursive: true, force: true });
    }
  });
});
