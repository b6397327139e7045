/**
 * A real VS Code workbench for end-to-end tests: code-server (its bundled VS
 * Code 1.100, installed by scripts/workbench-setup.sh into a cache directory)
 * on a free loopback port, with a private user-data and extensions directory,
 * driven through Debian's chromium by playwright-core. Nothing here mocks VS
 * Code: the helpers press the keys and read the DOM a user would.
 *
 *   const wb = await Workbench.start({ extensions: [vsix], folder, trust: true });
 *   try { await wb.openFile('a.cluster.xml'); ... } finally { await wb.close(); }
 *
 * `withWorkbench` does the same and saves a screenshot when the test fails.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Browser, Frame, Locator, Page } from 'playwright-core';

export const REPO = join(__dirname, '..', '..', '..');
export const ARTIFACTS = join(REPO, 'test-artifacts', 'workbench');
export const CODE_SERVER_VERSION = '4.100.3';
export const CHROMIUM = '/usr/bin/chromium';

/** Where scripts/workbench-setup.sh installs code-server (same rule as the script). */
/** build/memfabric.vsix, as `npm run package` writes it. */
export const VSIX = join(REPO, 'build', 'memfabric.vsix');

/** Newest modification time under the paths that go into the vsix. */
function newestSource(): number {
  let newest = 0;
  const walk = (p: string) => {
    if (!existsSync(p)) return;
    const st = statSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ['package.json', 'client/src', 'server/src', 'media', 'syntaxes', 'snippets', 'language-configuration', 'scripts/build-extension.mjs']) walk(join(REPO, p));
  return newest;
}

/**
 * build/memfabric.vsix, built with `npm run package` when it is missing or older
 * than its sources; undefined and a reason when it cannot be built.
 */
export function ensureVsix(): { vsix?: string; reason?: string } {
  if (existsSync(VSIX) && statSync(VSIX).mtimeMs >= newestSource()) return { vsix: VSIX };
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  if (!pkg.scripts?.package) return { reason: 'build/memfabric.vsix cannot be built: package.json has no "package" script' };
  const r = spawnSync('npm', ['run', 'package'], { cwd: REPO, encoding: 'utf8', timeout: 300_000, env: { ...process.env, npm_config_offline: 'true' } });
  if (r.status !== 0 || !existsSync(VSIX)) {
    return { reason: `build/memfabric.vsix cannot be built: npm run package exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' | ')}` };
  }
  return { vsix: VSIX };
}

export function codeServerDir(): string {
  return process.env.MEMFABRIC_CODE_SERVER_DIR
    ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'memfabric', `code-server-${CODE_SERVER_VERSION}`);
}

/** Why the workbench cannot run here, or undefined when it can. */
export function workbenchMissing(): string | undefined {
  const dir = codeServerDir();
  const marker = join(dir, '.memfabric-complete');
  if (!existsSync(marker) || readFileSync(marker, 'utf8').trim() !== CODE_SERVER_VERSION) {
    return `code-server ${CODE_SERVER_VERSION} is not installed in ${dir}: run scripts/workbench-setup.sh (npm test does)`;
  }
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} missing: run scripts/workbench-setup.sh (npm test does)`;
  return undefined;
}

function codeServerEntry(): string {
  return join(codeServerDir(), 'node_modules', 'code-server', 'out', 'node', 'entry.js');
}

export interface WorkbenchOptions {
  /** .vsix files or extension directories (a directory is copied into the extensions directory). */
  extensions: string[];
  /** The workspace folder to open. */
  folder: string;
  /** Answer the workspace trust prompt: true trusts the folder, false keeps Restricted Mode. */
  trust: boolean;
  /** User settings added to the harness's own (which silence welcome pages, telemetry and updates). */
  settings?: Record<string, unknown>;
  /** Environment added to code-server's (and so to the extension host's). */
  env?: Record<string, string>;
  /** Test name, used in artifact and log names. */
  name?: string;
}

const HARNESS_SETTINGS: Record<string, unknown> = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'git.enabled': false,
  'git.openRepositoryInParentFolders': 'never',
  // The DOM renderer: a terminal's rows are then text a test can read.
  'terminal.integrated.gpuAcceleration': 'off',
  'editor.hover.delay': 200,
  'editor.quickSuggestions': { other: false, comments: false, strings: false },
  'files.autoSave': 'off',
  'window.restoreWindows': 'none',
  'security.workspace.trust.startupPrompt': 'always',
  'security.workspace.trust.untrustedFiles': 'open',
};

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-dev-shm-usage', '--disable-quic', '--no-first-run', '--disable-sync',
];

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

/** Poll fn until it returns a value that is not undefined/false, or throw what `what` says after timeoutMs. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

export class Workbench {
  readonly page: Page;
  readonly home: string;
  readonly userDataDir: string;
  readonly extensionsDir: string;
  readonly logFile: string;
  readonly url: string;
  readonly folder: string;
  private readonly server: ChildProcess;
  private readonly browser: Browser;
  private closed = false;
  /** Page errors and console errors seen in the workbench, for failure messages. */
  readonly consoleErrors: string[] = [];

  private constructor(p: { page: Page; browser: Browser; server: ChildProcess; home: string; url: string; folder: string; logFile: string }) {
    this.page = p.page; this.browser = p.browser; this.server = p.server; this.home = p.home; this.url = p.url; this.folder = p.folder;
    this.logFile = p.logFile;
    this.userDataDir = join(p.home, 'ud');
    this.extensionsDir = join(p.home, 'ext');
  }

  static async start(opts: WorkbenchOptions): Promise<Workbench> {
    const missing = workbenchMissing();
    if (missing) throw new Error(missing);
    // Short: code-server puts a unix socket in the user-data directory (108-byte limit).
    const home = mkdtempSync(join(tmpdir(), 'mf-wb-'));
    const ud = join(home, 'ud'), ext = join(home, 'ext'), xdg = join(home, 'xdg');
    for (const d of [ud, ext, join(ud, 'User'), xdg]) mkdirSync(d, { recursive: true });
    writeFileSync(join(ud, 'User', 'settings.json'), JSON.stringify({ ...HARNESS_SETTINGS, ...(opts.settings ?? {}) }, null, 2));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      XDG_CONFIG_HOME: join(xdg, 'config'), XDG_DATA_HOME: join(xdg, 'data'),
      ...(opts.env ?? {}),
    };
    delete env.VSCODE_IPC_HOOK_CLI; // never talk to an outer VS Code
    const base = ['--config', join(home, 'config.yaml'), '--user-data-dir', ud, '--extensions-dir', ext];
    for (const e of opts.extensions) {
      if (statSync(e).isDirectory()) {
        const pkg = JSON.parse(readFileSync(join(e, 'package.json'), 'utf8')) as { publisher: string; name: string; version: string };
        cpSync(e, join(ext, `${pkg.publisher}.${pkg.name}-${pkg.version}`), { recursive: true });
      } else {
        const r = spawnSync(process.execPath, [codeServerEntry(), ...base, '--install-extension', e, '--force'], { env, encoding: 'utf8', timeout: 120_000 });
        if (r.status !== 0 || !/successfully installed/i.test(r.stdout + r.stderr)) {
          throw new Error(`code-server --install-extension ${e} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
        }
      }
    }
    const logFile = join(home, 'code-server.log');
    const server = spawn(process.execPath, [codeServerEntry(), ...base,
      '--auth', 'none', '--bind-addr', '127.0.0.1:0', '--disable-telemetry', '--disable-update-check',
      '--disable-getting-started-override', '--ignore-last-opened', opts.folder], {
      env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    const append = (b: Buffer) => { log += b.toString(); writeFileSync(logFile, log); };
    server.stdout!.on('data', append);
    server.stderr!.on('data', append);
    let browser: Browser | undefined;
    try {
      const port = await waitFor('code-server to listen', () => {
        if (server.exitCode !== null) throw new Error(`code-server exited with ${server.exitCode}:\n${log}`);
        return /HTTP server listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log)?.[1];
      }, 60_000, 100);
      const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(opts.folder)}`;
      const { chromium } = await import('playwright-core');
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const page = await context.newPage();
      page.setDefaultTimeout(30_000);
      const wb = new Workbench({ page, browser, server, home, url, folder: opts.folder, logFile });
      page.on('pageerror', (e) => wb.consoleErrors.push(`pageerror: ${e.message}`));
      page.on('console', (m) => { if (m.type() === 'error') wb.consoleErrors.push(m.text()); });
      await page.goto(url);
      await wb.waitForWorkbench();
      await wb.answerTrust(opts.trust);
      return wb;
    } catch (e) {
      await browser?.close().catch(() => undefined);
      killGroup(server);
      throw e;
    }
  }

  /** The workbench is drawn: the status bar, the explorer's folder. */
  async waitForWorkbench(): Promise<void> {
    await this.page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: 90_000 });
    await this.page.waitForSelector('.monaco-workbench .part.activitybar', { timeout: 30_000 });
  }

  /** Answer the "Do you trust the authors" prompt, then check the Restricted Mode indicator agrees. */
  async answerTrust(trust: boolean): Promise<void> {
    const dialog = this.page.locator('.monaco-dialog-box');
    await dialog.waitFor({ state: 'visible', timeout: 60_000 });
    const text = await dialog.innerText();
    if (!/trust the authors/i.test(text)) throw new Error(`expected the workspace trust prompt, found a dialog: ${text}`);
    await dialog.getByRole('button', { name: trust ? /^Yes, I trust the authors/ : /^No, I don't trust the authors/ }).click();
    await dialog.waitFor({ state: 'hidden' });
    const restricted = this.page.locator('.statusbar-item', { hasText: 'Restricted Mode' });
    if (trust) await restricted.waitFor({ state: 'detached', timeout: 15_000 });
    else await restricted.first().waitFor({ state: 'visible', timeout: 15_000 });
  }

  // ---------------------------------------------------------------- commands

  /** Open the command palette and run the command whose label is exactly `label` ("memfabric: Boot Cluster"). */
  async runCommand(label: string): Promise<void> {
    await this.quickInput('>' + label);
    const row = await this.quickPickRow(label);
    await row.click();
    await this.page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 }).catch(() => undefined);
  }

  /** The palette's labels for a query (without running anything), e.g. to check a command is offered or not. */
  async paletteLabels(query: string): Promise<string[]> {
    await this.quickInput('>' + query);
    await sleep(500);
    const labels = await this.quickPickLabels();
    await this.page.keyboard.press('Escape');
    return labels;
  }

  private async quickInput(value: string): Promise<void> {
    const widget = this.page.locator('.quick-input-widget');
    if (await widget.isVisible()) await this.page.keyboard.press('Escape');
    await this.page.keyboard.press('F1');
    const input = widget.locator('.quick-input-box input');
    await input.waitFor({ state: 'visible' });
    await input.fill(value);
  }

  /** Labels of the quick pick's visible rows. */
  async quickPickLabels(): Promise<string[]> {
    return this.page.locator('.quick-input-widget .quick-input-list .monaco-list-row .label-name').allInnerTexts()
      .then((l) => l.map((s) => s.replace(/\s+/g, ' ').trim()));
  }

  /** The quick pick row labelled exactly `label` (waits for it). */
  async quickPickRow(label: string, timeoutMs = 15_000): Promise<Locator> {
    const rows = this.page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
    await waitFor(`quick pick row "${label}" (rows: ${JSON.stringify(await this.quickPickLabels().catch(() => []))})`, async () => {
      for (const t of await this.quickPickLabels()) if (t === label) return true;
      return false;
    }, timeoutMs);
    return rows.filter({ has: this.page.locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRe(label)}\\s*$`) }) }).first();
  }

  /** Pick `label` in a quick pick that is already open (a command's own question). */
  async pick(label: string): Promise<void> {
    await (await this.quickPickRow(label, 30_000)).click();
  }

  // ---------------------------------------------------------------- editor

  /** Quick open (Go to File) a file of the workspace by its name, and wait for its editor. */
  async openFile(name: string): Promise<void> {
    // Quick open's file list can lag a few seconds behind files just written: ask again until it is there.
    const row = await waitFor(`quick open to list ${name}`, async () => {
      await this.quickInput('');
      await this.page.locator('.quick-input-widget .quick-input-box input').fill(name);
      return this.quickPickRow(basename(name), 5_000).catch(() => undefined);
    }, 60_000, 0);
    await row.click();
    await this.page.locator(`.tabs-container .tab.active[aria-label*="${basename(name)}"]`).first().waitFor({ timeout: 15_000 });
    await this.page.locator('.editor-instance .monaco-editor .view-lines').first().waitFor();
  }

  /** The active text editor (the visible Monaco editor of the active group). */
  editor(): Locator {
    return this.page.locator('.editor-group-container.active .editor-instance .monaco-editor').first();
  }

  /** Put the cursor at line:column (1-based) of the active editor. */
  async goTo(line: number, column: number): Promise<void> {
    await this.runCommand('Go to Line/Column...');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.fill(`:${line}:${column}`);
    await sleep(200);
    await this.page.keyboard.press('Enter');
    await this.editor().locator('textarea').first().focus();
    await waitFor(`cursor at ${line}:${column}`, async () => (await this.cursorPosition()) === `Ln ${line}, Col ${column}`, 10_000);
  }

  /** The status bar's "Ln L, Col C". */
  async cursorPosition(): Promise<string> {
    return (await this.statusBarItem('status.editor.selection').innerText()).trim();
  }

  /** Type text at the cursor of the active editor. */
  async type(text: string): Promise<void> {
    await this.page.keyboard.type(text, { delay: 10 });
  }

  /** The text of the active editor's visible lines, in order. */
  async visibleLines(): Promise<string[]> {
    return this.editor().locator('.view-lines').evaluate((el) => {
      const rows = [...el.querySelectorAll('.view-line')] as any[];
      rows.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
      return rows.map((r) => ((r.textContent as string | null) ?? '').replace(/\u00a0/g, ' '));
    });
  }

  /** Trigger completion at the cursor (Ctrl+Space) and return the suggestion labels. */
  async completions(): Promise<string[]> {
    await this.page.keyboard.press('Control+Space');
    const widget = this.page.locator('.editor-widget.suggest-widget.visible');
    await widget.waitFor({ state: 'visible', timeout: 20_000 });
    const rows = widget.locator('.monaco-list-row .label-name');
    await waitFor('completion items', async () => (await rows.count()) > 0 && !(await widget.innerText()).includes('Loading'), 20_000);
    return (await rows.allInnerTexts()).map((s) => s.trim());
  }

  /** Show the hover at the cursor (editor.action.showHover) and return its text. */
  async hover(): Promise<string> {
    await this.runCommand('Show or Focus Hover');
    const hover = this.page.locator('.monaco-editor .monaco-hover:not(.hidden) .monaco-hover-content').first();
    await hover.waitFor({ state: 'visible', timeout: 20_000 });
    return waitFor('hover text', async () => {
      const t = (await hover.innerText()).trim();
      return t && !/^Loading/.test(t) ? t : undefined;
    }, 20_000);
  }

  /** The scopes Developer: Inspect Editor Tokens and Scopes shows for the token at the cursor. */
  async inspectTokens(): Promise<string> {
    await this.runCommand('Developer: Inspect Editor Tokens and Scopes');
    const w = this.page.locator('.token-inspect-widget');
    await w.waitFor({ state: 'visible', timeout: 15_000 });
    const text = await w.innerText();
    await this.page.keyboard.press('Escape');
    return text;
  }

  // ---------------------------------------------------------------- status bar, panels, views

  statusBarItem(id: string): Locator {
    return this.page.locator(`.part.statusbar [id="${id}"]`);
  }

  /** Open the Problems panel and return its rows' text (file rows and marker rows, as shown). */
  async problems(): Promise<string[]> {
    await this.runCommand('View: Focus Problems (Errors, Warnings, Infos)');
    const panel = this.page.locator('.markers-panel');
    await panel.waitFor({ state: 'visible' });
    return panel.locator('.monaco-list-row').evaluateAll((rows) => rows.map((r) => (r.getAttribute('aria-label') ?? r.textContent ?? '').trim()));
  }

  /** Wait until a Problems row matches re; returns all rows then. */
  async waitForProblem(re: RegExp, timeoutMs = 60_000): Promise<string[]> {
    let rows: string[] = [];
    await this.problems();
    await waitFor(`a problem matching ${re} (rows: ${JSON.stringify(rows)})`, async () => {
      rows = await this.page.locator('.markers-panel .monaco-list-row').evaluateAll((rs) => rs.map((r) => (r.getAttribute('aria-label') ?? r.textContent ?? '').trim()));
      return rows.some((r) => re.test(r));
    }, timeoutMs, 500);
    return rows;
  }

  /** The pane of a view in the side bar, by its title ("Clusters"). */
  viewPane(title: string): Locator {
    return this.page.locator('.part.sidebar .pane').filter({ has: this.page.locator('.pane-header .title', { hasText: new RegExp(`^\\s*${escapeRe(title)}\\s*$`, 'i') }) });
  }

  /** The rows of a view's tree in display order: label (with description), depth, list index. */
  async treeRows(viewTitle: string): Promise<{ label: string; level: number; index: number }[]> {
    const rows = await this.viewPane(viewTitle).locator('.pane-body .monaco-list-row').evaluateAll((rs) => rs.map((r) => ({
      label: [r.querySelector('.label-name')?.textContent, r.querySelector('.label-description')?.textContent].filter(Boolean).join(' ').trim(),
      level: Number(r.getAttribute('aria-level') ?? '1'),
      index: Number(r.getAttribute('data-index') ?? '0'),
    })));
    return rows.sort((a, b) => a.index - b.index);
  }

  /**
   * A tree item of a view whose label matches (a string matches the label's
   * first word(s)); with `under`, only among the descendants of the first row
   * matching `under`. Waits for it.
   */
  async treeItem(viewTitle: string, label: string | RegExp, opts: { under?: string | RegExp; timeoutMs?: number } = {}): Promise<Locator> {
    const re = toRe(label);
    const parent = opts.under === undefined ? undefined : toRe(opts.under);
    let seen: string[] = [];
    const index = await waitFor(`tree item ${re}${parent ? ` under ${parent}` : ''} in view "${viewTitle}"`, async () => {
      const rows = await this.treeRows(viewTitle);
      seen = rows.map((r) => r.label);
      let from = 0, level = 0;
      if (parent) {
        const p = rows.findIndex((r) => parent.test(r.label));
        if (p < 0) return undefined;
        from = p + 1; level = rows[p].level;
      }
      for (let i = from; i < rows.length; i++) {
        if (parent && rows[i].level <= level) break;
        if (re.test(rows[i].label)) return rows[i].index + 1;
      }
      return undefined;
    }, opts.timeoutMs ?? 30_000, 300).catch((e: Error) => { throw new Error(`${e.message}; rows: ${JSON.stringify(seen)}`); });
    return this.viewPane(viewTitle).locator(`.pane-body .monaco-list-row[data-index="${index - 1}"]`);
  }

  /** Labels of the rows under the first row matching `parent` (its descendants). */
  async treeChildren(viewTitle: string, parent: string | RegExp): Promise<string[]> {
    const re = toRe(parent);
    const rows = await this.treeRows(viewTitle);
    const p = rows.findIndex((r) => re.test(r.label));
    if (p < 0) return [];
    const out: string[] = [];
    for (let i = p + 1; i < rows.length && rows[i].level > rows[p].level; i++) out.push(rows[i].label);
    return out;
  }

  /** The rows of a view as "label description" strings, in display order. */
  async treeLabels(viewTitle: string): Promise<string[]> {
    return (await this.treeRows(viewTitle)).map((r) => r.label);
  }

  /** Run an item's context-menu action by its label. */
  async contextMenu(item: Locator, action: string): Promise<void> {
    await item.click({ button: 'right' });
    const menu = this.page.locator('.context-view .monaco-menu');
    await menu.waitFor({ state: 'visible' });
    const entry = menu.locator('.action-label', { hasText: new RegExp(`^\\s*${escapeRe(action)}\\s*$`) }).first();
    // A menu ignores a mouse-up that comes too soon after it opened: hover, pause, click,
    // and if it is still open, the hovered entry is the selected one and Enter runs it.
    await entry.hover();
    await sleep(300);
    await entry.click();
    if (!(await menu.waitFor({ state: 'hidden', timeout: 3_000 }).then(() => true, () => false))) {
      await this.page.keyboard.press('Enter');
      await menu.waitFor({ state: 'hidden', timeout: 5_000 });
    }
  }

  /**
   * A context-menu action that asks something first (a quick pick or an input
   * box whose title matches `title`): the menu is opened again, up to three
   * times in all, when no such question shows within 10 s. Once in CI the
   * click closed the menu and no command ran (the next pick timed out on the
   * palette's old rows, no notification, no quick input); an action that
   * runs but never asks still fails, after the third try.
   */
  async contextMenuAsking(item: Locator, action: string, title: RegExp): Promise<void> {
    const widget = this.page.locator('.quick-input-widget');
    const asking = async () => (await widget.isVisible()) && title.test(await widget.locator('.quick-input-title').innerText().catch(() => ''));
    for (let attempt = 1; ; attempt++) {
      await this.contextMenu(item, action);
      const shown = await waitFor(`a question ${title} after ${action}`, asking, 10_000).then(() => true, (e: Error) => {
        if (attempt >= 3) throw e;
        return false;
      });
      if (shown) return;
      process.stderr.write(`workbench: '${action}' asked nothing within 10 s (try ${attempt} of 3): opening the menu again\n`);
    }
  }

  /** Click an item's inline action (the icons shown on hover) by its title. */
  async inlineAction(item: Locator, title: string): Promise<void> {
    await item.hover();
    await item.locator(`.actions .action-label[aria-label="${title}"]`).first().click();
  }

  // ---------------------------------------------------------------- terminal

  /** Names of the open terminals (the tabs list, or the single terminal's title). */
  async terminalNames(): Promise<string[]> {
    const tabs = await this.page.locator('.terminal-tabs-entry .label-name, .part.panel .single-terminal-tab').allInnerTexts().catch(() => []);
    return tabs.map((t) => t.trim()).filter(Boolean);
  }

  /** The text of the active terminal's visible rows. */
  async terminalText(): Promise<string> {
    return this.page.locator('.terminal-wrapper.active .xterm-rows').first().evaluate((el) =>
      [...el.children].map((r) => (r.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()).join('\n'));
  }

  /** Wait until the active terminal shows text matching re. */
  async waitForTerminal(re: RegExp, timeoutMs = 60_000): Promise<string> {
    let text = '';
    await waitFor(`terminal text matching ${re}`, async () => {
      text = await this.terminalText().catch(() => '');
      return re.test(text);
    }, timeoutMs, 500).catch((e: Error) => { throw new Error(`${e.message}\nterminal shows:\n${text}`); });
    return text;
  }

  // ---------------------------------------------------------------- webviews

  /** Titles of the editor tabs. */
  async tabTitles(): Promise<string[]> {
    return this.page.locator('.tabs-container .tab .label-name').allInnerTexts().then((l) => l.map((s) => s.trim()));
  }

  /**
   * The content frame of the webview whose document has `selector` (with `text`
   * in it when given). VS Code nests the extension's document in an iframe
   * inside the webview's own iframe; only those inner frames are searched.
   */
  async webviewFrame(selector: string, text?: string | RegExp, timeoutMs = 60_000): Promise<Frame> {
    return waitFor(`a webview with ${selector}${text ? ` containing ${text}` : ''}`, async () => {
      for (const f of this.page.frames()) {
        const parent = f.parentFrame();
        if (!parent || parent === this.page.mainFrame() || !/webview/.test(parent.url())) continue;
        const el = await f.$(selector).catch(() => null);
        if (!el) continue;
        if (text === undefined) return f;
        const t = await el.innerText().catch(() => '');
        if (typeof text === 'string' ? t.includes(text) : text.test(t)) return f;
      }
      return undefined;
    }, timeoutMs, 500);
  }

  // ---------------------------------------------------------------- notifications, artifacts

  /** Texts of the visible notification toasts. */
  async notifications(): Promise<string[]> {
    return this.page.locator('.notifications-toasts .notification-toast .notification-list-item-message').allInnerTexts();
  }

  /** Save a screenshot of the whole workbench to test-artifacts/workbench/<name>.png; returns its path. */
  async screenshot(name: string): Promise<string> {
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = join(ARTIFACTS, `${name}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /** What an extension's output channel (by name) has shown, from the workbench's log files; '' when none. */
  outputChannelLog(name: string): string {
    const out: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/output_logging_/.test(p) && e.name.replace(/^\d+-/, '') === `${name}.log`) out.push(readFileSync(p, 'utf8'));
      }
    };
    try { walk(join(this.userDataDir, 'logs')); } catch { /* no logs yet */ }
    return out.join('\n');
  }

  /** The extension host's log lines (for failure messages). */
  extensionHostLog(): string {
    const out: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/exthost|memfabric/i.test(p) && p.endsWith('.log')) out.push(`== ${p}\n${readFileSync(p, 'utf8').slice(-4000)}`);
      }
    };
    try { walk(join(this.userDataDir, 'logs')); } catch { /* no logs yet */ }
    return out.join('\n');
  }

  /** End chromium and code-server (its whole process group: extension host, language server, terminals). */
  async close(opts: { keep?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.race([this.browser.close().catch(() => undefined), sleep(10_000)]);
    await killGroupAndWait(this.server);
    if (!opts.keep) rmSync(this.home, { recursive: true, force: true });
  }
}

function escapeRe(s: string): string { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

function toRe(l: string | RegExp): RegExp { return typeof l === 'string' ? new RegExp(`^\\s*${escapeRe(l)}\\b`) : l; }

function killGroup(p: ChildProcess, sig: NodeJS.Signals = 'SIGTERM'): void {
  if (p.pid === undefined) return;
  try { process.kill(-p.pid, sig); } catch { /* already gone */ }
}

function groupAlive(pid: number): boolean {
  try { process.kill(-pid, 0); return true; } catch { return false; }
}

async function killGroupAndWait(p: ChildProcess): Promise<void> {
  if (p.pid === undefined) return;
  killGroup(p, 'SIGTERM');
  const end = Date.now() + 5_000;
  while (groupAlive(p.pid) && Date.now() < end) await sleep(100);
  if (groupAlive(p.pid)) killGroup(p, 'SIGKILL');
  const end2 = Date.now() + 5_000;
  while (groupAlive(p.pid) && Date.now() < end2) await sleep(100);
}

/**
 * Start a workbench, run fn, and always tear it down; when fn throws, save
 * test-artifacts/workbench/<name>-failure.png and add the extension host's log to the error.
 */
export async function withWorkbench<T>(name: string, opts: WorkbenchOptions, fn: (wb: Workbench) => Promise<T>): Promise<T> {
  const wb = await Workbench.start({ ...opts, name });
  let failed = false;
  try {
    const v = await fn(wb);
    rmSync(join(ARTIFACTS, `${name}-failure.png`), { force: true }); // from an earlier run
    return v;
  } catch (e) {
    failed = true;
    const shot = await wb.screenshot(`${name}-failure`).catch(() => '(no screenshot)');
    const err = e as Error;
    err.message += `\n  screenshot: ${shot}\n  code-server log: ${wb.logFile}\n${wb.extensionHostLog().split('\n').slice(-60).join('\n')}` +
      (wb.consoleErrors.length ? `\n  workbench console errors:\n    ${wb.consoleErrors.slice(-10).join('\n    ')}` : '');
    throw err;
  } finally {
    // On failure the private directory (code-server's log, the extension host's logs) is kept.
    await wb.close({ keep: failed });
  }
}

/** A fresh temp directory (the caller removes it). */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A fresh directory for one workbench test: ws/ (the folder VS Code opens),
 * run/ (memfabric.runDirectory) and a copy of the vsix (so a rebuild elsewhere
 * cannot change it under the install).
 */
export function workbenchDirs(prefix: string, vsix: string): { dir: string; ws: string; runDir: string; extension: string } {
  const dir = tempDir(prefix);
  const ws = join(dir, 'ws');
  mkdirSync(ws);
  const extension = join(dir, 'memfabric.vsix');
  copyFileSync(vsix, extension);
  return { dir, ws, runDir: join(dir, 'run'), extension };
}
