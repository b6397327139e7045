/**
 * The CXL actions and the CXL Events view in a real VS Code workbench
 * (code-server + chromium, test/support/workbench.ts), on a real guest: a
 * one-node cluster with a persistent Type 3 device boots under QEMU 10.0
 * (MEMFABRIC_QEMU in the extension host's environment) with the 6.12 guest;
 * the Type 3 device shows under its node in the Clusters view, its context
 * menu's Inject Event… asks the event (quick pick), the DPA (input box) and the
 * log (quick pick), Inject Poison… the start and length (input boxes), Inject
 * Error… the error and its type (quick picks); QEMU's answer and the guest's
 * record come back in a notification, and the records show in the CXL Events view, which polls
 * `memfabric cxl events` only while it is visible and the cluster runs (the
 * processes are watched in /proc); Stop Cluster leaves no QEMU.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasQemu10, processesMentioning, QEMU10, runCliWithRunDir } from './support/cli';
import { ensureVsix, workbenchDirs, waitFor, Workbench, workbenchMissing } from './support/workbench';

const missing = workbenchMissing();
const built = missing ? {} : ensureVsix();
const skip = missing ?? built.reason ?? (!hasQemu10() ? 'QEMU 10.0 missing (scripts/qemu10-setup.sh)' : undefined);

const TOPOLOGY = `<cluster name="ras">
  <node name="n" machine="q35" memory="1G" maxmem="2G" slots="1" cpus="1">
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12"><root-port id="rp0" port="0" chassis="0" slot="2"><type3 id="t3" size="256M" path="t3.raw" lsa-path="t3-lsa.raw" sn="0x5"/></root-port></host-bridge>
      <window size="4G" targets="cxl.1" region="pmem" dax="devdax"/>
    </cxl>
  </node>
</cluster>
`;

/** Whether a `memfabric cxl events … FILE` process (the view's poll) runs at some moment within ms (sampled every 50 ms). */
async function pollSeen(file: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
        const i = argv.indexOf('cxl');
        if (i >= 0 && argv[i + 1] === 'events' && argv.includes(file)) return true;
      } catch { /* gone */ }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describe('CXL actions and the CXL Events view in a real VS Code workbench (QEMU 10.0, 6.12 guest)', { skip, timeout: 600_000 }, () => {
  let dir = '';
  let ws = '';
  let runDir = '';
  let cluster = '';
  let wb: Workbench | undefined;
  let failed = false;

  before(async () => {
    let extension: string;
    ({ dir, ws, runDir, extension } = workbenchDirs('mf-e2e-cxl-', built.vsix!));
    cluster = join(ws, 'ras.cluster.xml');
    writeFileSync(cluster, TOPOLOGY);
    wb = await Workbench.start({
      name: 'e2e-cxl', extensions: [extension], folder: ws, trust: true,
      settings: { 'memfabric.runDirectory': runDir, 'memfabric.acceleration': 'tcg' },
      env: { MEMFABRIC_QEMU: QEMU10 },
    });
  });

  after(async () => {
    await wb?.close({ keep: failed });
    if (cluster) runCliWithRunDir(runDir, ['stop', cluster], { timeoutMs: 60_000, env: { MEMFABRIC_QEMU: QEMU10 } });
    if (dir && !failed) rmSync(dir, { recursive: true, force: true });
  });

  test('Inject Event…, Poison… and Error… on the Type 3 device of a running node: QEMU accepts each, the guest traces it, the CXL Events view shows the records; Stop Cluster leaves no QEMU', { timeout: 540_000 }, async () => {
    const w = wb!;
    try {
      await w.runCommand('memfabric: Focus on Clusters View');
      await waitFor('node n stopped', async () => (await w.treeChildren('Clusters', 'ras')).some((l) => /^n\b.*stopped/.test(l)));
      await w.inlineAction(await w.treeItem('Clusters', 'ras'), 'Boot Cluster');
      await waitFor('node n ready in the Clusters view', async () => {
        const nodes = await w.treeChildren('Clusters', 'ras');
        if (nodes.some((l) => /^n\b.*crashed/.test(l))) throw new Error(`boot failed: ${JSON.stringify(nodes)} ${JSON.stringify(await w.notifications())}`);
        return nodes.some((l) => /^n\b.*ready/.test(l));
      }, 300_000, 1_000);

      // The node's children: its Type 3 device, marked as such once the node runs.
      // (the node's description names the DAX device boot made of the window's region)
      const node = await w.treeItem('Clusters', /^n\b.*ready.*dax0\.0 devdax/, { under: 'ras' });
      if ((await node.getAttribute('aria-expanded')) !== 'true') await node.locator('.monaco-tl-twistie').click();
      const t3 = await w.treeItem('Clusters', /^t3 CXL Type 3/, { under: /^n\b/ });
      await w.screenshot('e2e-cxl-type3');

      /** The input box whose title matches, filled with value and accepted. */
      const answer = async (title: RegExp, value: string) => {
        await waitFor(`the input box ${title}`, async () => title.test(await w.page.locator('.quick-input-widget .quick-input-title').innerText().catch(() => '')));
        await w.page.locator('.quick-input-widget .quick-input-box input').fill(value);
        await w.page.keyboard.press('Enter');
      };
      /** The notification that QEMU accepted `command` for ras/n t3 (a failure's notification throws). */
      const accepted = (command: string) => waitFor(`the notification of ${command}`, async () => {
        const all = await w.notifications();
        const bad = all.find((n) => /ras\/n t3: (?!QEMU accepted)/.test(n));
        if (bad) throw new Error(`the injection failed: ${bad}`);
        return all.find((n) => n.includes(`ras/n t3: QEMU accepted ${command};`));
      }, 120_000, 500);

      await w.contextMenuAsking(t3, 'Inject Event…', /Inject Event into ras\/n t3: which event record\?/);
      await w.pick('general-media');
      await answer(/DPA/, '0x2000');
      await w.pick('warning');
      const note = await accepted('cxl-inject-general-media-event');
      assert.match(note, /the guest traced cxl_general_media/, note);

      // Inject Poison…: start and length; the guest's poison list has it.
      await w.contextMenuAsking(t3, 'Inject Poison…', /Inject Poison into ras\/n t3: start/);
      await answer(/Inject Poison into ras\/n t3: start/, '0x4000');
      await answer(/Inject Poison into ras\/n t3: length/, '128');
      const poison = await accepted('cxl-inject-poison');
      assert.match(poison, /the guest traced cxl_poison/, poison);
      assert.match(w.outputChannelLog('memfabric'), /\[cxl\] n guest mem0: media error at DPA 0x4000, 128 bytes/);

      // Inject Error…: a correctable error, which the guest's AER driver traces.
      await w.contextMenuAsking(t3, 'Inject Error…', /Inject Error into ras\/n t3: which protocol error\?/);
      await w.pick('correctable');
      await w.pick('cache-data-ecc');
      const error = await accepted('cxl-inject-correctable-error');
      assert.match(error, /the guest traced cxl_aer_correctable_error/, error);

      // The CXL Events view: the node, and its record with the injected DPA and log.
      await w.runCommand('memfabric: Focus on CXL Events View');
      const rows = await waitFor('the record in the CXL Events view', async () => {
        const r = await w.treeChildren('CXL Events', /^ras\/n\b/);
        return r.some((l) => /^cxl_general_media mem0 #\d+ .*dpa=2000 .*type=ECC Error .*log=Warning/.test(l)) && r;
      }, 60_000, 500);
      await w.screenshot('e2e-cxl-events');
      assert.equal(rows.filter((l) => /^cxl_general_media/.test(l)).length, 1, JSON.stringify(rows));
      await waitFor('the poison and the error in the CXL Events view', async () => {
        const r = await w.treeChildren('CXL Events', /^ras\/n\b/);
        return r.some((l) => /^cxl_poison mem0 #\d+ .*dpa=0x4000/.test(l)) && r.some((l) => /^cxl_aer_correctable_error mem0 #\d+/.test(l));
      }, 60_000, 500);
      const head = (await w.treeLabels('CXL Events')).find((l) => /^ras\/n\b/.test(l))!;
      assert.match(head, /^ras\/n \d+ records?/, head);
      // Polling: while the view shows and the cluster runs, `memfabric cxl events` runs every few seconds;
      // with the view collapsed (hidden), none; shown again, again.
      assert.ok(await pollSeen(cluster, 12_000), 'no memfabric cxl events poll while the view is visible');
      const header = w.viewPane('CXL Events').locator('.pane-header');
      await header.click();
      await waitFor('the CXL Events view collapsed', async () => (await header.getAttribute('aria-expanded')) === 'false', 5_000);
      await new Promise((r) => setTimeout(r, 1_500)); // a poll under way ends
      assert.equal(await pollSeen(cluster, 10_000), false, 'memfabric cxl events polled while the view was hidden');
      await header.click();
      assert.ok(await pollSeen(cluster, 12_000), 'no poll after the view was shown again');

      await w.runCommand('memfabric: Focus on Clusters View');
      await w.inlineAction(await w.treeItem('Clusters', 'ras'), 'Stop Cluster');
      await waitFor('node n stopped', async () => (await w.treeChildren('Clusters', 'ras')).some((l) => /^n\b.*stopped/.test(l)), 90_000, 1_000);
      await waitFor('no QEMU of the cluster left', () => processesMentioning(runDir).length === 0, 30_000);
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal(await pollSeen(cluster, 8_000), false, 'memfabric cxl events polled after the cluster stopped');
      // the CXL Events view keeps what it had, and says the node stopped
      await w.runCommand('memfabric: Focus on CXL Events View');
      await waitFor('the CXL Events view to say stopped', async () => (await w.treeLabels('CXL Events')).some((l) => /^ras\/n \d+ records? · stopped/.test(l)), 30_000, 500);
    } catch (e) {
      failed = true;
      const shot = await w.screenshot('e2e-cxl-failure').catch(() => '(no screenshot)');
      (e as Error).message += `\n  screenshot: ${shot}\n  code-server log: ${w.logFile}\n  notifications: ${JSON.stringify(await w.notifications().catch(() => []))}\n` +
        w.outputChannelLog('memfabric').split('\n').slice(-30).join('\n') + '\n' +
        w.extensionHostLog().split('\n').filter((l) => /memfabric|error|Error/.test(l)).slice(-30).join('\n');
      throw e;
    }
  });
});
