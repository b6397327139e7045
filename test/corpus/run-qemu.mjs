// Runner for the QEMU ground-truth corpus (test tooling, no dependencies).
//
// parseCorpusFile(text) -> { what, expect: string[], expectAt: {[version]: string[]}, files: [{path, size}], argv: string[] }
// expectFor(parsed, version) -> string[]   (the codes that version's check must report)
// runQemu(argv, files, opts?) -> Promise<{ qemu, started, exitCode, signal, stderr }>
//   opts.bin: the QEMU binary to run instead of argv[0]
//
// Versions. Every configuration is recorded under each QEMU of QEMU_VERSIONS
// (see corpusQemus()): NNN-name.expected.json is QEMU 7.2's record (the file
// name it always had), NNN-name.expected-<major.minor>.json any other's, e.g.
// NNN-name.expected-10.0.json. Expectations: '# expect: CODES|clean' is what
// every version's check must report, '# expect@10.0: CODES|clean' replaces it
// for QEMU 10.0 only (any major.minor; at most one line per version).
//
// "started" note: with `-qmp stdio` QEMU 7.2 prints the QMP greeting *before* it
// creates -device/-object/-numa state, so a config that QEMU refuses also produces
// the greeting (then exits 1). A greeting alone therefore does not prove startup.
// QMP commands are only dispatched once QEMU's main loop runs, i.e. after the
// whole command line has been accepted, so `started` is true only when the
// greeting arrived AND QEMU answered {"execute":"qmp_capabilities"} with "return".
//
// Privileges: when the recorder runs as root, QEMU is run as nobody (uid/gid
// 65534) so that absolute mem-path values (e.g. /dev/dax0.0) cannot make QEMU
// create regular files on the host; as root QEMU would silently create
// /dev/dax0.0 as a plain file and start. Override with opts.uid/opts.gid or
// MEMFABRIC_CORPUS_UID / MEMFABRIC_CORPUS_GID (set them to the current ids to
// run unprivileged-drop off).

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, ftruncateSync, closeSync, mkdirSync, chownSync, accessSync, constants as fsConstants } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join, dirname, isAbsolute } from 'node:path';

export const QEMU_EXTRA_ARGS = ['-display', 'none', '-nodefaults', '-S', '-qmp', 'stdio'];
export const TIMEOUT_MS = 20000;

/** Split a shell-style command (no expansions) into words. */
export function shellSplit(src) {
  const words = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    if (c === '\\' && src[i + 1] === '\n') { i += 2; continue; } // line continuation
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) { words.push(cur); cur = ''; inWord = false; }
      i++;
      continue;
    }
    if (c === '#' && !inWord) { // comment to end of line
      while (i < n && src[i] !== '\n') i++;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = src.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote');
      cur += src.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (c === '"') {
      i++;
      while (i < n && src[i] !== '"') {
        if (src[i] === '\\' && i + 1 < n && '"\\$`\n'.includes(src[i + 1])) {
          if (src[i + 1] !== '\n') cur += src[i + 1];
          i += 2;
        } else {
          cur += src[i++];
        }
      }
      if (i >= n) throw new Error('unterminated double quote');
      i++;
      continue;
    }
    if (c === '\\') {
      if (i + 1 < n) cur += src[i + 1];
      i += 2;
      continue;
    }
    cur += c;
    i++;
  }
  if (inWord) words.push(cur);
  return words;
}

/** The codes of an expect line's value ("clean" = none). */
function expectCodes(value) {
  const codes = value.split(/\s+/).filter(Boolean);
  return codes.length === 1 && codes[0] === 'clean' ? [] : codes;
}

/** Parse one corpus file. */
export function parseCorpusFile(text) {
  let what = '';
  let expect = [];
  let sawExpect = false;
  const expectAt = {};
  const files = [];
  for (const line of text.split('\n')) {
    const m = /^\s*#\s*(what|expect|file)(?:@(\S*))?\s*:\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    const [, key, at, value] = m;
    if (at !== undefined && key !== 'expect') throw new Error(`only '# expect' takes a @version: ${line}`);
    if (key === 'what') what = value;
    else if (key === 'expect' && at !== undefined) {
      if (!/^\d+\.\d+$/.test(at)) throw new Error(`'# expect@VERSION:' needs a major.minor version such as 10.0: ${line}`);
      if (at in expectAt) throw new Error(`two '# expect@${at}:' lines`);
      const codes = expectCodes(value);
      if (codes.length === 0 && value.trim() !== 'clean') throw new Error(`empty '# expect@${at}:' line (write 'clean')`);
      expectAt[at] = codes;
    } else if (key === 'expect') {
      if (sawExpect) throw new Error("two '# expect:' lines");
      sawExpect = true;
      expect = expectCodes(value);
    } else if (key === 'file') {
      const parts = value.split(/\s+/);
      if (parts.length !== 2 || !/^\d+$/.test(parts[1])) throw new Error(`bad '# file:' line: ${line}`);
      if (isAbsolute(parts[0]) || parts[0].split('/').includes('..')) throw new Error(`'# file:' path must be relative: ${parts[0]}`);
      files.push({ path: parts[0], size: Number(parts[1]) });
    }
  }
  if (!sawExpect) throw new Error('missing "# expect:" header');
  const argv = shellSplit(text);
  if (argv.length === 0) throw new Error('no command');
  return { what, expect, expectAt, files, argv };
}

/** What QEMU `version` (major.minor) must make the check report: its '# expect@version:' line, else '# expect:'. */
export function expectFor(parsed, version) {
  return parsed.expectAt?.[version] ?? parsed.expect;
}

const versionCache = new Map();
export function qemuVersion(bin = 'qemu-system-x86_64') {
  if (!versionCache.has(bin)) {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8' });
    versionCache.set(bin, out.split('\n')[0].trim());
  }
  return versionCache.get(bin);
}

/** "10.0" from a `--version` line ("QEMU emulator version 10.0.2 (Debian ...)"). */
export function versionKey(versionLine) {
  const m = /version (\d+)\.(\d+)/.exec(versionLine);
  if (!m) throw new Error(`no QEMU version in '${versionLine}'`);
  return `${m[1]}.${m[2]}`;
}

/** The record file suffix of a version: 7.2 keeps the original '.expected.json'. */
export function recordSuffix(version) {
  return version === '7.2' ? '.expected.json' : `.expected-${version}.json`;
}

/** NNN-name.qemu -> that version's record path. */
export function recordPath(corpusFile, version) {
  return corpusFile.replace(/\.qemu$/, recordSuffix(version));
}

/** The default QEMU 10.0: scripts/qemu10-setup.sh's wrapper. */
export function defaultQemu10() {
  const dir = process.env.MEMFABRIC_QEMU10_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'memfabric', 'qemu-10.0');
  return join(dir, 'bin', 'qemu-system-x86_64');
}

/**
 * The QEMUs the corpus is recorded under, in order. MEMFABRIC_CORPUS_QEMU_7_2 /
 * MEMFABRIC_CORPUS_QEMU_10_0 override where each is found (defaults: the
 * system's qemu-system-x86_64, and qemu10-setup.sh's wrapper).
 */
export const QEMU_VERSIONS = [
  { version: '7.2', bin: () => process.env.MEMFABRIC_CORPUS_QEMU_7_2 || 'qemu-system-x86_64' },
  { version: '10.0', bin: () => process.env.MEMFABRIC_CORPUS_QEMU_10_0 || defaultQemu10() },
];

/**
 * Each version of QEMU_VERSIONS with its binary and whether that binary is
 * present: { version, bin, present, actual } (actual: the version the binary
 * reports, which must equal `version` for it to count as present).
 */
export function corpusQemus() {
  return QEMU_VERSIONS.map(({ version, bin }) => {
    const b = bin();
    let actual = null;
    try { actual = versionKey(qemuVersion(b)); } catch { /* not installed */ }
    return { version, bin: b, present: actual === version, actual };
  });
}

// Can the unprivileged uid run bin? (A binary under /root, e.g. the cached QEMU
// 10.0, is not reachable by nobody: /root is 0700.)
const reachCache = new Map();
function reachableBy(bin, uid, gid) {
  const key = `${bin} ${uid} ${gid}`;
  if (!reachCache.has(key)) {
    const r = spawnSync(bin, ['--version'], { uid, gid, stdio: 'ignore', timeout: 10000 });
    reachCache.set(key, !r.error && r.status === 0);
  }
  return reachCache.get(key);
}

// Every QEMU this process started and that has not exited yet.
const live = new Set();
/** Kill (SIGKILL) every QEMU runQemu started that is still running. */
export function killAllQemus() {
  for (const child of live) { try { child.kill('SIGKILL'); } catch { /* gone */ } }
}
process.on('exit', killAllQemus);

/** Run QEMU with argv (argv[0] = binary) in a fresh temp dir; resolve to the record. */
export function runQemu(argv, files = [], opts = {}) {
  const timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
  const bin = opts.bin ?? argv[0];
  const args = argv.slice(1);
  const version = qemuVersion(bin);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const envUid = process.env.MEMFABRIC_CORPUS_UID;
  const envGid = process.env.MEMFABRIC_CORPUS_GID;
  const uid = opts.uid ?? (envUid !== undefined ? Number(envUid) : isRoot ? 65534 : undefined);
  const gid = opts.gid ?? (envGid !== undefined ? Number(envGid) : isRoot ? 65534 : undefined);
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-corpus-'));
  const own = (p) => { if (isRoot && uid !== undefined) chownSync(p, uid, gid ?? uid); };
  own(dir);
  for (const f of files) {
    const p = join(dir, f.path);
    mkdirSync(dirname(p), { recursive: true });
    const fd = openSync(p, 'w');
    try { ftruncateSync(fd, f.size); } finally { closeSync(fd); }
    for (let q = p; q !== dir; q = dirname(q)) own(q);
  }
  const spawnOpts = { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] };
  let cmd = bin;
  let cmdArgs = [...args, ...QEMU_EXTRA_ARGS];
  if (isRoot && uid !== undefined && uid !== 0) {
    const g = gid ?? uid;
    if (reachableBy(bin, uid, g)) {
      spawnOpts.uid = uid;
      spawnOpts.gid = g;
    } else {
      // The binary lies where uid cannot reach it (QEMU 10.0 under /root/.cache):
      // run it as uid all the same, with CAP_DAC_READ_SEARCH only (read and
      // search any file, write none: a mem-path such as /dev/dax0.0 still
      // cannot be created). setpriv (util-linux) execs QEMU in place.
      cmdArgs = [`--reuid=${uid}`, `--regid=${g}`, '--clear-groups',
        '--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search', '--', bin, ...cmdArgs];
      cmd = 'setpriv';
    }
  }
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let greeted = false;
    let started = false;
    let timedOut = false;
    const child = spawn(cmd, cmdArgs, spawnOpts);
    live.add(child);
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.stdin.on('error', () => {}); // EPIPE when QEMU already exited
    const onLine = (line) => {
      let msg;
      try { msg = JSON.parse(line); } catch { return; }
      if (msg && msg.QMP && !greeted) {
        greeted = true;
        child.stdin.write('{"execute":"qmp_capabilities"}\n');
        child.stdin.write('{"execute":"quit"}\n');
      } else if (msg && 'return' in msg && greeted) {
        started = true;
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      stdout += d;
      let nl;
      while ((nl = stdout.indexOf('\n')) >= 0) { onLine(stdout.slice(0, nl).trim()); stdout = stdout.slice(nl + 1); }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', (e) => { live.delete(child); clearTimeout(timer); rmSync(dir, { recursive: true, force: true }); reject(e); });
    child.on('close', (code, signal) => {
      live.delete(child);
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      if (stdout.trim()) onLine(stdout.trim());
      let text = stderr.split(dir).join('.');
      if (timedOut) text += `\n[record: killed after ${timeoutMs} ms timeout]\n`;
      resolve({ qemu: version, started, exitCode: code, signal: signal ?? null, stderr: text });
    });
  });
}

// Codes whose configs QEMU refuses (exit 1 or abort) vs. codes for configs
// that start, for the version whose expectation names them (a code's class is
// the same in every version; what differs is which code a version expects).
// 'either' codes depend on the case (see comments).
export const REFUSED_CODES = new Set([
  'size-syntax', 'cxl-fmw-split', 'maxmem-below-ram', 'slots-without-maxmem', 'slots-maxmem-equal', 'slots-too-many',
  'maxmem-not-page-aligned', 'undefined-id', 'duplicate-id', 'unknown-property',
  'unknown-object-type', 'unknown-device-type', 'pxb-cxl-without-cxl-on', 'bus-nr-duplicate',
  'chassis-slot-duplicate', 'cxl-fmw-size-256m', 'cxl-fmw-ways', 'cxl-fmw-granularity',
  'cxl-fmw-missing-property', 'cxl-type3-no-memdev', 'cxl-type3-no-lsa', 'ivshmem-no-memdev',
  'ivshmem-size-pow2', 'numa-sum', 'numa-node-missing', 'backend-missing-mem-path',
  'backend-size-zero', 'backend-align-pow2', 'device-needs-bus', 'backing-file-twice',
  'pxb-cxl-needs-pcie', // invented: pxb-cxl on a conventional PCI root bus (-M pc)
  'memory-device-needs-maxmem', 'memory-device-needs-slots', 'memory-device-slots-full', 'memory-device-space',
  'memory-device-node', 'nvdimm-needs-nvdimm-on', 'nvdimm-label-size', 'ivshmem-doorbell-no-chardev',
  'numa-mem-memdev-mix', 'machine-memory-backend', 'backend-prealloc-reserve', 'backend-host-nodes-policy',
  'max-ram-below-4g', 'unknown-machine-type',
  // Refusals no rule reports yet (memfabric has no such code): QEMU 10.0 ones
  // (expect@10.0), 'reserved-ram-id' and 'phys-bits-too-low' (both versions).
  'cxl-type3-memdev-conflict', 'cxl-dc-no-backend', 'cxl-dc-region-size', 'cxl-dc-base-unaligned',
  'cxl-switch-cci-target', 'backend-size-page-multiple', 'backend-rom-readonly', 'virtio-mem-prealloc-memdev',
  'reserved-ram-id', 'phys-bits-too-low',
]);
export const SILENT_CODES = new Set([
  'ivshmem-share-off', 'cxl-type3-size-256m', 'cxl-fmw-without-cxl-on', 'cxl-rp-port-duplicate',
  'discard-data-shared', 'pmem-without-share',
]);
// backing-file-size: smaller file -> refused, larger file -> starts.
// dax-align: silent on a real devdax, but without /dev/dax0.0 QEMU fails to open it (unprivileged).
// memdev-busy: refused, except 7.2 cxl-type3 realized after the other user (accepted silently; 9.1+ refuses).
// numa-legacy-mem: refused on machine types 5.1+, a deprecation warning (starts) up to 5.0.
export const EITHER_CODES = new Set(['backing-file-size', 'dax-align', 'memdev-busy', 'numa-legacy-mem']);

/** Check that a record of QEMU `version` is consistent with that version's expectation; returns a list of problems. */
export function verifyRecord(parsed, rec, version = '7.2') {
  const problems = [];
  const codes = expectFor(parsed, version);
  const unknown = codes.filter((c) => !REFUSED_CODES.has(c) && !SILENT_CODES.has(c) && !EITHER_CODES.has(c));
  if (unknown.length) problems.push(`unknown code(s): ${unknown.join(' ')}`);
  const mustRefuse = codes.some((c) => REFUSED_CODES.has(c));
  const mustStart = !mustRefuse && codes.every((c) => SILENT_CODES.has(c));
  if (mustRefuse) {
    if (rec.started) problems.push('expected a refusal but QEMU started');
    if (!/qemu-system-x86_64: /.test(rec.stderr)) problems.push('refused without a qemu error on stderr');
  }
  if (mustStart) {
    if (!rec.started) problems.push('expected QEMU to start but it did not');
    if (rec.exitCode !== 0) problems.push(`exit code ${rec.exitCode} (signal ${rec.signal}) after quit`);
  }
  if (!rec.started && rec.exitCode === 0) problems.push('not started but exit code 0');
  return problems;
}
