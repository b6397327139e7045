/**
 * A second, real LSP client: Debian's neovim, headless, starts
 * `memfabric lsp --stdio` for the buffers it opens (vim.lsp.start on 0.8+,
 * vim.lsp.start_client + vim.lsp.buf_attach_client on bookworm's 0.7.2),
 * waits for the diagnostics, edits a buffer (an incremental didChange from
 * neovim's own change tracking), stops the server, and writes what neovim's
 * diagnostic API holds as JSON. Neovim and the server must both exit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const TIMEOUT_MS = 45000;

const BAD_QEMU = 'qemu-system-x86_64 -M q35 -m 2G \\\n  -object memory-backend-file,id=m,mem-path=m.raw,size=1GB,share=on \\\n  -device ivshmem-plain,memdev=m\n';
const CLEAN_QEMU = 'qemu-system-x86_64 -M q35 -m 1G \\\n  -object memory-backend-file,id=fam,mem-path=fam.raw,size=32G,share=on \\\n  -device ivshmem-plain,id=shm0,memdev=fam,bus=pcie.0\n';

function nvimVersion(): string | undefined {
  try {
    const r = spawnSync('nvim', ['--version'], { encoding: 'utf8', timeout: 10000 });
    return r.status === 0 ? /NVIM v(\S+)/.exec(r.stdout)?.[1] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The init file. Everything it needs comes from the JSON file named by
 * $MF_CONFIG; it always writes $MF_CONFIG's `out` and quits, even on error.
 */
const INIT_LUA = String.raw`
local cfg = vim.fn.json_decode(table.concat(vim.fn.readfile(os.getenv('MF_CONFIG')), '\n'))
local v = vim.version()
local res = { nvim = string.format('%d.%d.%d', v.major, v.minor, v.patch), api = vim.lsp.start and 'vim.lsp.start' or 'vim.lsp.start_client', files = {} }
local published = {}   -- uri -> { version = ..., count = ... } of the last publishDiagnostics
local exited = nil

local orig = vim.lsp.handlers['textDocument/publishDiagnostics']
vim.lsp.handlers['textDocument/publishDiagnostics'] = function(err, result, ctx, config)
  orig(err, result, ctx, config)
  if result then published[result.uri] = { version = result.version, count = #result.diagnostics } end
end

local function write()
  vim.fn.writefile({ vim.fn.json_encode(res) }, cfg.out)
end

local function snapshot(buf)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    table.insert(out, { lnum = d.lnum, col = d.col, end_lnum = d.end_lnum, end_col = d.end_col, severity = d.severity,
      message = d.message, source = d.source, code = d.code ~= nil and tostring(d.code) or vim.NIL })
  end
  return out
end

-- Wait until the server published diagnostics for buf's current version.
local function wait_diags(buf)
  local uri = vim.uri_from_bufnr(buf)
  local ok = vim.wait(cfg.timeout_ms, function()
    local p = published[uri]
    local want = vim.lsp.util.buf_versions[buf]
    return p ~= nil and (p.version == nil or want == nil or p.version == want)
  end, 20)
  return ok
end

local client_id
local function attach(buf, f)
  local conf = {
    name = 'memfabric',
    cmd = cfg.cmd,
    cmd_env = cfg.cmd_env,
    root_dir = cfg.root_dir,
    get_language_id = function(_, _) return f.languageId end,
    on_exit = function(code, signal) exited = { code = code, signal = signal } end,
  }
  if vim.lsp.start then
    -- 0.8+: reuses the client of the same name and root_dir for later buffers.
    client_id = vim.lsp.start(conf, { bufnr = buf })
  else
    if not client_id then client_id = vim.lsp.start_client(conf) end
    vim.lsp.buf_attach_client(buf, client_id)
  end
  local client = vim.lsp.get_client_by_id(client_id)
  if client and client.rpc and client.rpc.pid then res.server_pid = client.rpc.pid end
end

local function run()
  for _, f in ipairs(cfg.files) do
    local r = { name = f.name }
    res.files[f.name] = r
    vim.cmd('edit ' .. vim.fn.fnameescape(f.path))
    local buf = vim.api.nvim_get_current_buf()
    attach(buf, f)
    r.published = wait_diags(buf)
    r.diagnostics = snapshot(buf)
    if f.requests then
      local uri = vim.uri_from_bufnr(buf)
      if f.requests.completion then
        local resp = vim.lsp.buf_request_sync(buf, 'textDocument/completion', { textDocument = { uri = uri }, position = f.requests.completion }, cfg.timeout_ms)
        r.completion = {}
        for _, x in pairs(resp or {}) do
          local items = x.result and (x.result.items or x.result) or {}
          for _, it in ipairs(items) do table.insert(r.completion, it.label) end
        end
      end
      if f.requests.hover then
        local resp = vim.lsp.buf_request_sync(buf, 'textDocument/hover', { textDocument = { uri = uri }, position = f.requests.hover }, cfg.timeout_ms)
        for _, x in pairs(resp or {}) do
          if x.result and x.result.contents then r.hover = x.result.contents.value end
        end
      end
    end
    if f.edit then
      local e = f.edit
      vim.api.nvim_buf_set_text(buf, e.line, e.col, e.line, e.end_col, { e.text })
      r.after_edit_line = vim.api.nvim_buf_get_lines(buf, e.line, e.line + 1, true)[1]
      r.published_after_edit = wait_diags(buf)
      r.diagnostics_after_edit = snapshot(buf)
    end
  end
end

local function main()
  local ok, err = pcall(run)
  if not ok then res.error = tostring(err) end
  if client_id then
    local t0 = vim.loop.hrtime()
    vim.lsp.stop_client(client_id)
    res.server_stopped = vim.wait(cfg.timeout_ms, function() return exited ~= nil end, 20)
    res.server_exit = exited or vim.NIL
    res.stop_ms = (vim.loop.hrtime() - t0) / 1e6
  end
  write()
  vim.cmd('qa!')
end

vim.api.nvim_create_autocmd('VimEnter', { once = true, callback = function()
  local ok, err = pcall(main)
  if not ok then res.error = (res.error or '') .. ' main: ' .. tostring(err); pcall(write); vim.cmd('qa!') end
end })
`;

interface VimDiag {
  lnum: number;
  col: number;
  end_lnum: number;
  end_col: number;
  severity: number;
  message: string;
  source: string;
  code: string | null;
}
interface FileResult {
  name: string;
  published: boolean;
  diagnostics: VimDiag[];
  after_edit_line?: string;
  published_after_edit?: boolean;
  diagnostics_after_edit?: VimDiag[];
  completion?: string[];
  hover?: string;
}
interface Results {
  nvim: string;
  api: string;
  files: Record<string, FileResult>;
  server_pid?: number;
  server_stopped?: boolean;
  server_exit?: { code: number; signal: number } | null;
  error?: string;
}

/** Pids of live processes whose environment holds token (the server we started, and anything it left behind). */
function processesWith(token: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/environ`, 'latin1').includes(token)) out.push(Number(p));
    } catch {
      /* gone, or not ours */
    }
  }
  return out;
}

const version = nvimVersion();

describe('neovim as a second LSP client', { skip: version ? false : "nvim is not installed (scripts/setup.sh installs Debian's neovim: apt-get install -y --no-install-recommends neovim)" }, () => {
  let dir: string;
  let res: Results;
  let nvimExit: { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean };
  let stderr = '';
  let leftovers: number[] = [];
  const token = `memfabric-nvim-${process.pid}-${Date.now()}`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'memfabric-nvim-'));
    // Separate directories: command lines in one directory form a cluster.
    for (const d of ['bad', 'clean', 'xdg']) mkdirSync(join(dir, d));
    const bad = join(dir, 'bad', 'bad.qemu');
    const clean = join(dir, 'clean', 'fam.qemu');
    writeFileSync(bad, BAD_QEMU);
    writeFileSync(clean, CLEAN_QEMU);
    const out = join(dir, 'result.json');
    const config = {
      out,
      timeout_ms: 15000,
      cmd: [process.execPath, join(ROOT, 'bin/memfabric.js'), 'lsp', '--stdio'],
      cmd_env: { MEMFABRIC_NVIM_TOKEN: token },
      root_dir: dir,
      files: [
        // 1GB → 1G: the fix, typed in neovim (an incremental didChange).
        { name: 'bad', path: bad, languageId: 'qemu-cmdline', edit: { line: 1, col: 55, end_col: 58, text: '1G' } },
        // Completion and hover asked by neovim itself (vim.lsp.buf_request_sync).
        {
          name: 'clean',
          path: clean,
          languageId: 'qemu-cmdline',
          requests: {
            completion: { line: 2, character: CLEAN_QEMU.split('\n')[2].indexOf('memdev=') + 'memdev='.length },
            hover: { line: 2, character: CLEAN_QEMU.split('\n')[2].indexOf('ivshmem-plain') + 2 },
          },
        },
        // Opened in place, never written (-n: no swap file either).
        { name: 'fame', path: join(ROOT, 'examples/fame-4node.cluster.xml'), languageId: 'memfabric-topology' },
      ],
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    writeFileSync(join(dir, 'init.lua'), INIT_LUA);
    const xdg = join(dir, 'xdg');
    const child = spawn('nvim', ['--headless', '-n', '-i', 'NONE', '--noplugin', '-u', join(dir, 'init.lua')], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MF_CONFIG: join(dir, 'config.json'), XDG_CONFIG_HOME: xdg, XDG_DATA_HOME: xdg, XDG_STATE_HOME: xdg, XDG_CACHE_HOME: xdg },
    });
    child.stderr!.on('data', (b) => (stderr += b));
    child.stdout!.resume();
    nvimExit = await new Promise((res) => {
      let timedOut = false;
      const t = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, TIMEOUT_MS);
      child.on('exit', (code, signal) => {
        clearTimeout(t);
        res({ code, signal, timedOut });
      });
    });
    // Neovim is gone: so must the server be (it inherited our token through cmd_env).
    const deadline = Date.now() + 3000;
    while ((leftovers = processesWith(token)).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const p of leftovers) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    res = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : ({ files: {}, error: `no result file; nvim stderr: ${stderr}` } as unknown as Results);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`neovim ${version} ran the script and quit by itself`, () => {
    assert.equal(nvimExit.timedOut, false, `nvim did not finish within ${TIMEOUT_MS} ms (killed); stderr: ${stderr}`);
    assert.equal(nvimExit.code, 0, `nvim exit ${nvimExit.code} ${nvimExit.signal}; stderr: ${stderr}`);
    assert.equal(res.error, undefined, res.error);
    assert.equal(res.nvim, version);
    // bookworm's 0.7.2 has no vim.lsp.start.
    assert.equal(res.api, /^0\.[0-7]\./.test(version!) ? 'vim.lsp.start_client' : 'vim.lsp.start');
  });

  it('size=1GB: neovim holds the size-syntax error at its exact range', () => {
    const f = res.files.bad;
    assert.ok(f?.published, `no diagnostics published for bad.qemu: ${JSON.stringify(res)}`);
    const d = f.diagnostics.find((x) => x.code === 'size-syntax');
    assert.ok(d, JSON.stringify(f.diagnostics));
    // Line 2, columns 56–58 ("1GB"), 0-based as vim.diagnostic keeps them.
    assert.deepEqual({ lnum: d.lnum, col: d.col, end_lnum: d.end_lnum, end_col: d.end_col }, { lnum: 1, col: 55, end_lnum: 1, end_col: 58 });
    assert.equal(BAD_QEMU.split('\n')[1].slice(d.col, d.end_col), '1GB');
    assert.equal(d.severity, 1, 'vim.diagnostic.severity.ERROR');
    assert.equal(d.source, 'memfabric');
    assert.match(d.message, /Parameter 'size' expects a size value/);
  });

  it('typing the fix in neovim (incremental didChange) clears the error', () => {
    const f = res.files.bad;
    assert.equal(f.after_edit_line, BAD_QEMU.split('\n')[1].replace('1GB', '1G'));
    assert.ok(f.published_after_edit, 'diagnostics published for the edited version');
    assert.deepEqual(f.diagnostics_after_edit?.filter((x) => x.severity === 1 || x.code === 'size-syntax'), [], JSON.stringify(f.diagnostics_after_edit));
    // The server saw the edited text: the 1 GiB BAR is placed now.
    assert.ok(f.diagnostics_after_edit?.some((x) => x.code === 'layout-placement' && /BAR2 of 0x40000000 \(1 GiB\)/.test(x.message)), JSON.stringify(f.diagnostics_after_edit));
  });

  it('clean files get no error: a FAM command line, and the FAME topology example', () => {
    for (const name of ['clean', 'fame']) {
      const f = res.files[name];
      assert.ok(f?.published, `no diagnostics published for ${name}: ${JSON.stringify(res)}`);
      assert.deepEqual(f.diagnostics.filter((x) => x.severity === 1), [], `${name}: ${JSON.stringify(f.diagnostics)}`);
      assert.ok(f.diagnostics.every((x) => x.source === 'memfabric'));
      // Not just an empty list: the information finding placing the 32 GiB BAR2.
      assert.ok(f.diagnostics.some((x) => x.code === 'layout-placement' && /BAR2 of 0x800000000 \(32 GiB\)/.test(x.message)), `${name}: ${JSON.stringify(f.diagnostics)}`);
    }
  });

  it('completion and hover answer neovim: the backend id after memdev=, the device with its BAR2 in the guest', () => {
    const f = res.files.clean;
    assert.deepEqual(f?.completion, ['fam'], JSON.stringify(f));
    assert.match(f.hover ?? '', /\*\*shm0\*\* `0000:00:0[0-9a-f]\.0` BAR2: start \*\*0x800000000\*\*, end 0xfffffffff, size 0x800000000 \(32 GiB\)/);
  });

  it('the server exits 0 after neovim stops it (shutdown + exit), and no process is left', () => {
    assert.equal(res.server_stopped, true, 'the server exited after vim.lsp.stop_client');
    assert.deepEqual(res.server_exit, { code: 0, signal: 0 });
    assert.deepEqual(leftovers, [], `server processes left after nvim quit (killed): ${leftovers.join(' ')}`);
  });
});
