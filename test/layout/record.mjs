#!/usr/bin/env node
/**
 * Ground-truth recorder for memfabric's memory-map predictor.
 *
 * For every test/layout/configs/NNN-name.qemu (or only those named on the
 * command line: `node test/layout/record.mjs 023 040-cxl-ref-maxmem`), boots
 * the configuration under real QEMU with memfabric's guest image (compiled
 * out/server/src/runtime/*.js: buildImage, launchNode), and writes
 * test/layout/configs/NNN-name.guest.json with what the guest and QEMU show.
 *
 * The QEMU binary: `--qemu BIN` (e.g. the QEMU 10.0 wrapper
 * ~/.cache/memfabric/qemu-10.0/bin/qemu-system-x86_64), else $MEMFABRIC_QEMU,
 * else the config's own (qemu-system-x86_64 in PATH, QEMU 7.2). Recordings
 * made under 7.2 are NNN-name.guest.json; under any other version they are
 * NNN-name.guest-MAJOR.MINOR.json (the version the binary reports, e.g.
 * 025-….guest-10.0.json), so a 10.0 recording never replaces the 7.2 one.
 * A config with a `# only: 10.0` header line is only recorded under that
 * version (it does not start under the others): runs under any other QEMU skip
 * it, and its recordings carry `only`.
 *
 *   qemu     first line of `qemu-system-x86_64 --version` (of the binary used)
 *   only     the config's `# only:` version, when it has one
 *   firmware the guest's /sys/class/dmi/id/bios_version (SeaBIOS as the guest sees it)
 *   kernel   `uname -r` in the guest
 *   image    guest image cache key (the image directory is written as $IMAGE in argv)
 *   argv     the full QEMU argv as launched; the run directory is written as `.`
 *   append   the `# append:` kernel arguments of the config ('' if none)
 *   iomem    /proc/iomem (read as root)
 *   lspci    `lspci -v -nn`
 *   lspciVV  `lspci -vv -nn` (prints "Region N:" = exact BAR indexes)
 *   pciResources  /sys/bus/pci/devices/* /resource: [{bdf, vendorDevice, class,
 *            resources: [{index, start, end, flags}]}] (only non-empty lines;
 *            index 0-5 = BARs, 6 = ROM, 7+ = bridge windows) – exact BAR indexes
 *   memmap   /sys/firmware/memmap/N/{start,end,type}, sorted by start
 *   dmesg    dmesg lines matching BIOS-e820|e820: |PCI: |pci 0000|BAR|soft reserved|Soft Reserved|CXL|cxl
 *            and also pci_bus 0000 (root bus resources = ACPI _CRS windows), PCI Root Bridge,
 *            PCI host bridge, user-defined physical RAM map|user: (memmap=), pmem|hmem|dax|nd_
 *   qom      from QMP: pci-hole64-start/end, pci-hole64-size, pci-hole-start/end,
 *            below/above-4g-mem-size of /machine/q35 (q35) or /machine/i440fx (pc), as
 *            hex strings; i440FX-pcihost lacks below/above-4g-mem-size in 7.2, so for pc
 *            they come from the ram-below-4g / ram-above-4g aliases of `info mtree`
 *            (marked `…-source: "info mtree alias"`); `ram-aliases` has those lines
 *   mtree    QMP human-monitor-command `info mtree -f` (all flat views)
 *   mtreeMemory  the `address-space: memory` tree of `info mtree` (not flattened: shows
 *            the empty device-memory container, cxl_host_reg, the ram-below/above-4g aliases)
 *
 * Config format: `# what: …`, `# append: KERNEL ARGS`, `# only: VERSION` header lines, then one
 * QEMU command line (binary first; backslash-newline continuation; simple
 * '…' / "…" quoting). Relative `mem-path=` values are resolved in a fresh
 * temporary run directory. At most two configurations run at a time; every
 * QEMU started is stopped, also on failure.
 *
 * Needs `npx tsc -p .` first (uses out/).
 */
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, basename, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const CONFIGS = join(HERE, 'configs');
const require = createRequire(import.meta.url);
const { buildImage } = require(join(REPO, 'out/server/src/runtime/image.js'));
const { launchNode, tail } = require(join(REPO, 'out/server/src/runtime/launch.js'));

// The brief's pattern, plus the root-bus windows from ACPI _CRS (pci_bus … root bus resource),
// the PCI root bridges, and the memmap=/pmem/DAX lines.
const DMESG_RE = 'BIOS-e820|e820: |PCI: |pci 0000|BAR|soft reserved|Soft Reserved|CXL|cxl|pci_bus 0000|PCI Root Bridge|PCI host bridge|user-defined physical RAM map|user: |pmem|hmem|dax|nd_';
const CONCURRENCY = 2;

/** Split one shell-like command line into words (quotes, backslash escapes; no expansion). */
export function splitWords(text) {
  const words = [];
  let cur = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && text[i + 1] === '\n') { i++; continue; }
    if (/\s/.test(c)) { if (cur !== null) { words.push(cur); cur = null; } continue; }
    cur ??= '';
    if (c === "'") {
      const j = text.indexOf("'", i + 1);
      if (j < 0) throw new Error('unterminated single quote');
      cur += text.slice(i + 1, j); i = j;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        cur += text[j];
      }
      if (j >= text.length) throw new Error('unterminated double quote');
      i = j;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
    } else cur += c;
  }
  if (cur !== null) words.push(cur);
  return words;
}

/** Parse a .qemu config: {what, append, argv}. */
export function parseConfig(text) {
  let what = '';
  let append = '';
  let only = null;
  const body = [];
  for (const line of text.split('\n')) {
    const m = /^\s*#\s*(what|append|only):\s?(.*)$/.exec(line);
    if (m) {
      if (m[1] === 'what') what = m[2].trim();
      else if (m[1] === 'append') append = m[2].trim();
      else only = m[2].trim();
      continue;
    }
    if (/^\s*#/.test(line)) continue;
    body.push(line);
  }
  const argv = splitWords(body.join('\n'));
  return { what, append, only, argv };
}

/** major.minor of a `QEMU emulator version X.Y.Z …` line. */
export function majorMinor(versionLine) {
  const m = /version (\d+)\.(\d+)/.exec(versionLine);
  if (!m) throw new Error(`no QEMU version in: ${versionLine}`);
  return `${m[1]}.${m[2]}`;
}

/** The recording file of config `name` for QEMU major.minor `mm`: 7.2 keeps the plain name. */
export function recordingName(name, mm) {
  return mm === '7.2' ? `${name}.guest.json` : `${name}.guest-${mm}.json`;
}

/** Make relative mem-path= (and path=) option values absolute inside dir. */
function resolvePaths(argv, dir) {
  return argv.map((a) => a.replace(/(^|,)(mem-path|path)=([^,]+)/g, (all, pre, k, v) => (isAbsolute(v) ? all : `${pre}${k}=${join(dir, v)}`)));
}

// ---------------------------------------------------------------------------
// QMP

class Qmp {
  constructor(path) { this.path = path; }
  async connect(timeoutMs = 20_000) {
    const t0 = Date.now();
    for (;;) {
      try {
        this.sock = await new Promise((res, rej) => {
          const s = net.createConnection(this.path);
          s.once('connect', () => res(s));
          s.once('error', rej);
        });
        break;
      } catch (e) {
        if (Date.now() - t0 > timeoutMs) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    this.buf = '';
    this.waiters = [];
    this.sock.setEncoding('utf8');
    this.sock.on('data', (d) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.event) continue;
        const w = this.waiters.shift();
        if (w) w(msg);
      }
    });
    await this.next(); // greeting
    await this.cmd('qmp_capabilities');
  }
  next() { return new Promise((r) => this.waiters.push(r)); }
  async cmd(execute, args) {
    const p = this.next();
    this.sock.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
    let timer;
    const m = await Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`QMP ${execute}: timeout`)), 60_000); })])
      .finally(() => clearTimeout(timer));
    if (m.error) throw new Error(`QMP ${execute}: ${m.error.desc}`);
    // greeting has QMP, responses have return
    return m.return;
  }
  close() { this.sock?.destroy(); }
}

async function qmpRecord(sockPath, q35) {
  const qmp = new Qmp(sockPath);
  await qmp.connect();
  try {
    const host = q35 ? '/machine/q35' : '/machine/i440fx';
    const qom = { path: host };
    for (const prop of ['pci-hole64-start', 'pci-hole64-end', 'pci-hole64-size', 'pci-hole-start', 'pci-hole-end', 'below-4g-mem-size', 'above-4g-mem-size']) {
      try {
        const v = await qmp.cmd('qom-get', { path: host, property: prop });
        qom[prop] = typeof v === 'number' ? '0x' + BigInt(v).toString(16) : v;
      } catch (e) {
        qom[prop] = null;
        qom[`${prop}-error`] = String(e.message);
      }
    }
    // i440FX-pcihost has no below/above-4g-mem-size properties in 7.2: take the RAM split
    // from the ram-below-4g / ram-above-4g aliases of the (non-flat) memory tree instead.
    // HMP output has CRLF line ends; stored with LF
    const tree = (await qmp.cmd('human-monitor-command', { 'command-line': 'info mtree' })).replace(/\r\n/g, '\n');
    // the tree of the system address space (device-memory, cxl_host_reg, pci hole aliases)
    // (`info mtree` prints several `address-space:` lines before a tree they share)
    const blocks = [];
    let prevAs = false;
    for (const line of tree.split('\n')) {
      const isAs = /^address-space: /.test(line) || /^memory-region: /.test(line);
      if (isAs && !prevAs) blocks.push([]);
      blocks.at(-1)?.push(line);
      prevAs = isAs;
    }
    const memoryTree = (blocks.find((b) => b.some((l) => l.trim() === 'address-space: memory')) ?? []).join('\n').trimEnd() + '\n';
    const aliases = [...new Set(tree.split('\n').filter((l) => /alias ram-(below|above)-4g\b/.test(l)).map((l) => l.trim()))];
    qom['ram-aliases'] = aliases;
    for (const which of ['below', 'above']) {
      if (qom[`${which}-4g-mem-size`] !== null) continue;
      const a = aliases.find((l) => l.includes(`alias ram-${which}-4g `));
      const m = a && /^([0-9a-f]+)-([0-9a-f]+) /.exec(a);
      qom[`${which}-4g-mem-size`] = m ? '0x' + (BigInt('0x' + m[2]) - BigInt('0x' + m[1]) + 1n).toString(16) : '0x0';
      qom[`${which}-4g-mem-size-source`] = 'info mtree alias';
      delete qom[`${which}-4g-mem-size-error`];
    }
    const mtree = (await qmp.cmd('human-monitor-command', { 'command-line': 'info mtree -f' })).replace(/\r\n/g, '\n');
    return { qom, mtree, memoryTree };
  } finally {
    qmp.close();
  }
}

// ---------------------------------------------------------------------------
// guest side

async function sh(node, script, timeoutMs = 60_000) {
  const r = await node.exec(['sh', '-c', script], timeoutMs);
  if (r.exitCode !== 0) throw new Error(`guest command failed (${r.exitCode}): ${script}\n${r.stderr}`);
  return r.stdout;
}

async function guestRecord(node) {
  const kernel = (await sh(node, 'uname -r')).trim();
  const iomem = await sh(node, 'cat /proc/iomem');
  const lspci = await sh(node, 'lspci -v -nn');
  const lspciVV = await sh(node, 'lspci -vv -nn');
  const memmapText = await sh(node, 'for d in /sys/firmware/memmap/*; do echo "$(cat $d/start) $(cat $d/end) $(cat $d/type)"; done');
  const memmap = memmapText.split('\n').filter(Boolean).map((l) => {
    const [start, end, ...type] = l.split(' ');
    return { start, end, type: type.join(' ') };
  }).sort((a, b) => (BigInt(a.start) < BigInt(b.start) ? -1 : BigInt(a.start) > BigInt(b.start) ? 1 : 0));
  const resText = await sh(node, 'for d in /sys/bus/pci/devices/*; do echo "DEV ${d##*/} $(cat $d/vendor) $(cat $d/device) $(cat $d/class)"; cat $d/resource; done');
  const pciResources = [];
  let cur;
  for (const l of resText.split('\n')) {
    const m = /^DEV (\S+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+)/.exec(l);
    if (m) {
      cur = { bdf: m[1], vendorDevice: `${m[2]}:${m[3]}`, class: `0x${m[4]}`, resources: [] };
      cur._i = 0;
      pciResources.push(cur);
      continue;
    }
    const r = /^(0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+)$/.exec(l.trim());
    if (r && cur) {
      const index = cur._i++;
      if (BigInt(r[1]) !== 0n || BigInt(r[2]) !== 0n || BigInt(r[3]) !== 0n) cur.resources.push({ index, start: r[1], end: r[2], flags: r[3] });
    }
  }
  for (const d of pciResources) delete d._i;
  const dmesg = await sh(node, `dmesg | grep -E '${DMESG_RE}' || true`);
  const firmware = (await sh(node, 'cat /sys/class/dmi/id/bios_version 2>/dev/null || true')).trim();
  return { kernel, firmware, iomem, lspci, lspciVV, pciResources, memmap, dmesg };
}

// ---------------------------------------------------------------------------

function qemuVersion(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return (r.stdout || '').split('\n')[0].trim();
}

async function recordOne(file, image, log, qemu) {
  const name = basename(file, '.qemu');
  const cfg = parseConfig(readFileSync(file, 'utf8'));
  if (qemu.bin) cfg.argv[0] = qemu.bin;
  const dir = mkdtempSync(join(tmpdir(), `mf-layout-${name}-`));
  const q35 = cfg.argv.some((a, i) => (cfg.argv[i - 1] === '-M' || cfg.argv[i - 1] === '-machine') && /^(q35|pc-q35)/.test(a));
  let node;
  const t0 = Date.now();
  try {
    const qmpSock = join(dir, 'qmp.sock');
    const argv = [...resolvePaths(cfg.argv, dir), '-qmp', `unix:${qmpSock},server=on,wait=off`];
    if (cfg.append) argv.push('-append', cfg.append);
    node = await launchNode({ name, argv, image, runDir: join(dir, 'run'), readyTimeoutMs: 240_000 });
    const guest = await guestRecord(node);
    const { qom, mtree, memoryTree } = await qmpRecord(qmpSock, q35);
    const scrub = (s) => s.split(dir).join('.').split(image.dir).join('$IMAGE');
    const rec = {
      config: `${name}.qemu`,
      what: cfg.what,
      qemu: qemu.version,
      ...(cfg.only ? { only: cfg.only } : {}),
      kernel: guest.kernel,
      firmware: guest.firmware,
      image: image.key ?? basename(image.dir),
      argv: node.argv.map(scrub),
      append: cfg.append,
      iomem: guest.iomem,
      lspci: guest.lspci,
      lspciVV: guest.lspciVV,
      pciResources: guest.pciResources,
      memmap: guest.memmap,
      dmesg: guest.dmesg,
      qom,
      mtree: scrub(mtree),
      mtreeMemory: scrub(memoryTree),
      bootMs: node.bootMs,
    };
    writeFileSync(join(dirname(file), recordingName(name, qemu.mm)), JSON.stringify(rec, null, 2) + '\n');
    log(`${name} (QEMU ${qemu.mm}): ok (boot ${(node.bootMs / 1000).toFixed(1)} s, total ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return true;
  } catch (e) {
    log(`${name} (QEMU ${qemu.mm}): FAILED: ${e.message}${node ? `\n${tail(node.consoleLog, 30)}` : ''}`);
    return false;
  } finally {
    if (node) await node.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const args = process.argv.slice(2);
  const want = [];
  let bin = (process.env.MEMFABRIC_QEMU ?? '').trim() || null;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--qemu') bin = args[++i];
    else if (args[i].startsWith('--qemu=')) bin = args[i].slice('--qemu='.length);
    else want.push(args[i]);
  }
  // launchNode would take $MEMFABRIC_QEMU over the config's binary: the binary is set in argv[0] instead.
  delete process.env.MEMFABRIC_QEMU;
  const version = qemuVersion(bin ?? 'qemu-system-x86_64');
  if (!version) throw new Error(`${bin ?? 'qemu-system-x86_64'} --version printed nothing`);
  const qemu = { bin, version, mm: majorMinor(version) };
  console.error(`recording under ${version}${bin ? ` (${bin})` : ''}`);
  let files = readdirSync(CONFIGS).filter((f) => f.endsWith('.qemu')).sort();
  if (want.length) files = files.filter((f) => want.some((w) => f === w || f === `${w}.qemu` || f.startsWith(w)));
  files = files.filter((f) => {
    const only = parseConfig(readFileSync(join(CONFIGS, f), 'utf8')).only;
    if (only && only !== qemu.mm) console.error(`${f}: skipped (only: ${only})`);
    return !only || only === qemu.mm;
  });
  if (!files.length) throw new Error(`no configs match ${want.join(' ')}`);
  const image = await buildImage({ log: (l) => console.error(l) });
  const log = (l) => console.log(l);
  const queue = files.map((f) => join(CONFIGS, f));
  const failed = [];
  // Stop QEMUs on Ctrl-C: launchNode's stop() runs in finally blocks; exit after they ran.
  process.on('SIGINT', () => { queue.length = 0; });
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, async () => {
    while (queue.length) {
      const f = queue.shift();
      if (!(await recordOne(f, image, log, qemu))) failed.push(basename(f));
    }
  }));
  if (failed.length) {
    console.log(`failed: ${failed.join(' ')}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => { console.error(e); process.exit(1); });
}
