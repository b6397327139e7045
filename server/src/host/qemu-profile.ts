/**
 * Reads a QemuProfile from a real QEMU binary, and keeps it: built on first
 * use, cached on disk per binary (path, size, mtime, version line) under
 * $XDG_CACHE_HOME/memfabric/profiles (or ~/.cache/…).
 *
 * Three short runs, side by side, every one with an argv array and a timeout:
 *  - QMP on `-machine none`: query-target (the architecture), query-machines, query-commands, qom-list-types,
 *    device-list-properties of every device type, qom-list-properties of every
 *    user-creatable object type and of the q35/pc machine types;
 *  - `-device help` and `-machine help` for what QMP does not tell (each
 *    device's bus, each machine's description);
 *  - the firmware: q35 with SeaBIOS's debug console, read until its first line
 *    ("SeaBIOS (version 1.16.3-…)"), then killed.
 * The bundled profiles are made by this same code (scripts/gen-qemu-profile.mjs).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { findExecutable, qemuBinary } from '../runtime/launch';
import { qemuVersionLine, versionCacheDir } from '../runtime/image';
import { keepFile, memfabricCacheDir } from '../runtime/keep-file';
import { PropInfo, QemuProfile, StoredProfile, bundledProfile, loadProfile, storeProfile } from '../engine/qemu/profile';
import { archOfBinary } from '../engine/model/model';

/** Bumped when the profile's shape or the way it is read changes (old cache entries are then ignored). */
const PROFILE_FORMAT = 4;
const DEFAULT_BINARY = 'qemu-system-x86_64';

export class ProfileError extends Error {}

/** The QEMU binary the user runs: $MEMFABRIC_QEMU (the memfabric.qemuBinary setting reaches us through it), else qemu-system-x86_64 from PATH. */
export function userQemuBinary(env: NodeJS.ProcessEnv = process.env): string {
  return qemuBinary(DEFAULT_BINARY, env);
}

/** The absolute path of an executable (PATH lookup for a bare name), or undefined. */
export function resolveBinary(bin: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const found = findExecutable(bin, env);
  return found && resolve(found);
}

function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return memfabricCacheDir('profiles', env);
}

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function run(bin: string, args: string[], input: string | undefined, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    // Its own process group: a timeout ends whatever it started too.
    const p = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => killGroup(p.pid), timeoutMs);
    p.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(new ProfileError(`cannot run ${bin}: ${e.message}`));
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') reject(new ProfileError(`${bin} ${args.join(' ')} did not answer within ${timeoutMs} ms`));
      else resolve({ stdout, stderr, code });
    });
    p.stdin.on('error', () => undefined);
    p.stdin.end(input ?? '');
  });
}

function propsOf(list: { name: string; type: string; 'default-value'?: unknown }[], dropChildren = true): Record<string, PropInfo> {
  const out: Record<string, PropInfo> = {};
  for (const p of [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    // child<…> properties are parts of the object, never set by a user.
    if (dropChildren && p.type.startsWith('child<')) continue;
    const info: PropInfo = { type: p.type };
    const d = p['default-value'];
    if (d !== undefined) info.default = d as PropInfo['default'];
    out[p.name] = info;
  }
  return out;
}

/** "  size=<int>  - …" lines of `-object T,help`. */
function helpProps(text: string): Record<string, PropInfo> {
  const out: Record<string, PropInfo> = {};
  for (const line of text.split('\n')) {
    const m = /^\s+([A-Za-z0-9_.\-]+)=<([^>]*)>/.exec(line);
    if (m) out[m[1]] = { type: m[2] };
  }
  return out;
}

/** f over items, at most n at a time, results in order. */
async function pool<T, R>(items: T[], n: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]);
    }
  }));
  return out;
}

/**
 * QMP over stdin/stdout: every command written at once, answers read in order
 * (QMP answers one command after the other; `quit` last). A QEMU that exits
 * on a command (a device type whose module is not installed: "missing object
 * type 'virtio-gpu-gl-device'") gives that command its error, and the rest
 * are asked of a new QEMU.
 */
async function qmp(bin: string, commands: { execute: string; arguments?: object }[], timeoutMs: number): Promise<unknown[]> {
  const answers: unknown[] = [];
  // QEMU that stops before answering everything is asked again for the rest; the command it stopped at
  // counts as failed only when a second QEMU stops at it too (a crash of that command, not a passing kill).
  let stoppedAt = -1;
  while (answers.length < commands.length) {
    const rest = commands.slice(answers.length);
    const input = [{ execute: 'qmp_capabilities' }, ...rest, { execute: 'quit' }].map((c) => JSON.stringify(c)).join('\n') + '\n';
    const r = await run(bin, ['-machine', 'none', '-display', 'none', '-nodefaults', '-qmp', 'stdio'], input, timeoutMs);
    const got: unknown[] = [];
    for (const line of r.stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      let msg: { return?: unknown; error?: { desc: string }; event?: string; QMP?: unknown };
      try {
        // Defaults past 2^53 (uint64 ~0) stay exact as strings.
        msg = JSON.parse(line.replace(/("default-value": )(-?\d{16,})/g, '$1"$2"'));
      } catch {
        continue;
      }
      if (msg.event || msg.QMP) continue;
      got.push(msg.error ? { error: msg.error.desc } : msg.return);
    }
    const why = r.stderr.trim().split('\n')[0] || `exit ${r.code}`;
    // got[0] answers qmp_capabilities: without it this is no QEMU speaking QMP.
    if (got.length === 0) throw new ProfileError(`${bin} is not a QEMU that answers QMP (${why})`);
    const answered = got.slice(1, rest.length + 1);
    answers.push(...answered);
    if (answered.length < rest.length) {
      if (stoppedAt === answers.length) answers.push({ error: why });
      else stoppedAt = answers.length;
    }
  }
  return answers;
}

/** SeaBIOS's version from its first debug-console line, or undefined when the binary loads something else. */
async function firmwareOf(bin: string, timeoutMs: number): Promise<QemuProfile['firmware']> {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-fw-'));
  const log = join(dir, 'debugcon.log');
  try {
    const args = ['-machine', 'q35', '-m', '128M', '-display', 'none', '-nodefaults', '-monitor', 'none', '-serial', 'none',
      '-chardev', `file,id=dbg,path=${log}`, '-device', 'isa-debugcon,iobase=0x402,chardev=dbg'];
    const p = spawn(bin, args, { stdio: ['ignore', 'ignore', 'ignore'], detached: true });
    const exited = new Promise<void>((resolve) => p.on('close', () => resolve()));
    p.on('error', () => undefined);
    const deadline = Date.now() + timeoutMs;
    let line: string | undefined;
    for (;;) {
      if (existsSync(log)) {
        const text = readFileSync(log, 'utf8');
        const nl = text.indexOf('\n');
        if (nl >= 0) {
          line = text.slice(0, nl).trim();
          break;
        }
      }
      if (p.exitCode !== null || p.signalCode !== null || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    killGroup(p.pid);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    if (!line) return undefined;
    const m = /^SeaBIOS \(version (?:rel-)?(\d+\.\d+\.\d+)/.exec(line);
    return m ? { name: 'SeaBIOS', version: m[1], line } : { name: line.split(/\s/)[0] || 'unknown', version: '', line };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads the profile of one binary (about a second; no cache). */
export async function readProfile(binary: string, timeoutMs = 30000): Promise<QemuProfile> {
  const path = resolveBinary(binary);
  if (!path) throw new ProfileError(`the QEMU binary '${binary}' is not ${binary.includes('/') ? 'an executable file' : 'found in PATH'}`);
  const version = await run(path, ['--version'], undefined, Math.min(timeoutMs, 10000));
  const vm = /version (\d+\.\d+(?:\.\d+)?)/.exec(version.stdout);
  if (version.code !== 0 || !vm) throw new ProfileError(`'${binary}' is not QEMU: --version printed ${JSON.stringify((version.stdout + version.stderr).trim().slice(0, 120))}`);

  const [deviceHelp, machineHelp, firmware, first] = await Promise.all([
    run(path, ['-device', 'help'], undefined, timeoutMs),
    run(path, ['-machine', 'help'], undefined, timeoutMs),
    firmwareOf(path, Math.min(timeoutMs, 5000)).catch(() => undefined),
    qmp(path, [
      { execute: 'query-target' },
      { execute: 'query-machines' },
      { execute: 'qom-list-types', arguments: { implements: 'device', abstract: false } },
      { execute: 'qom-list-types', arguments: { implements: 'user-creatable', abstract: false } },
      { execute: 'query-commands' },
    ], timeoutMs),
  ]);
  const [target, machinesQ, deviceTypes, objectTypes, commandsQ] = first as [
    { arch: string },
    { name: string; alias?: string; 'is-default'?: boolean; 'default-cpu-type'?: string }[],
    { name: string }[],
    { name: string }[],
    { name: string }[] | { error: string },
  ];

  const bus = new Map<string, string | null>();
  for (const line of deviceHelp.stdout.split('\n')) {
    const m = /^name "([^"]+)"(?:, bus ([^,]+))?/.exec(line);
    if (m) bus.set(m[1], m[2] ?? null);
  }
  const desc = new Map<string, string>();
  for (const line of machineHelp.stdout.split('\n')) {
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (m && m[1] !== 'Supported') desc.set(m[1], m[2].trim());
  }

  const machines: QemuProfile['machines'] = {};
  for (const m of [...machinesQ].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const entry = { alias: null, desc: desc.get(m.name) ?? '', ...(m['is-default'] ? { isDefault: true } : {}), ...(m['default-cpu-type'] ? { defaultCpu: m['default-cpu-type'] } : {}) };
    machines[m.name] = entry;
    if (m.alias) machines[m.alias] = { ...entry, alias: m.name, desc: desc.get(m.alias) ?? entry.desc };
  }
  const aliasOf = (t: string) => machines[t]?.alias ?? t;

  // Only the devices -device accepts (those it lists); the rest cannot be created by a user.
  const devNames = deviceTypes.map((t) => t.name).filter((n) => bus.has(n)).sort();
  const objNames = objectTypes.map((t) => t.name).sort();
  const hostBridges = ['q35-pcihost', 'i440FX-pcihost'];
  // Objects from `-object T,help`, one run each: QMP qom-list-properties crashes or hangs
  // QEMU on some types (x-remote-object, colo-compare, filter-dump in 7.2).
  const objectHelp = await pool(objNames, 4, (t) => run(path, ['-object', `${t},help`], undefined, timeoutMs).catch(() => undefined));
  const answers = await qmp(path, [
    ...devNames.map((typename) => ({ execute: 'device-list-properties', arguments: { typename } })),
    ...['q35', 'pc'].map((m) => ({ execute: 'qom-list-properties', arguments: { typename: `${aliasOf(m)}-machine` } })),
    ...hostBridges.map((typename) => ({ execute: 'device-list-properties', arguments: { typename } })),
  ], timeoutMs);
  type PL = { name: string; type: string; 'default-value'?: unknown }[];
  const list = (i: number): PL => (Array.isArray(answers[i]) ? (answers[i] as PL) : []);
  const devices: QemuProfile['devices'] = {};
  devNames.forEach((n, i) => (devices[n] = { bus: bus.get(n) ?? null, props: propsOf(list(i)) }));
  const objects: QemuProfile['objects'] = {};
  objNames.forEach((n, i) => (objects[n] = { props: helpProps(objectHelp[i]?.stdout ?? '') }));
  const base = devNames.length;
  const machineProps = { q35: propsOf(list(base)), pc: propsOf(list(base + 1)) };
  const globals: QemuProfile['globals'] = {};
  hostBridges.forEach((n, i) => (globals[n] = propsOf(list(base + 2 + i))));

  // (devices with the same properties, x86 CPU models above all, share one list, as a stored profile is loaded)
  return loadProfile(storeProfile({
    arch: target.arch,
    version: vm[1],
    versionLine: version.stdout.split('\n')[0].trim(),
    ...(firmware ? { firmware } : {}),
    origin: { kind: 'binary', path },
    devices,
    objects,
    machines,
    machineProps,
    globals,
    // Every QEMU since 0.14 has query-commands; an error answer leaves the list out rather than empty.
    ...(Array.isArray(commandsQ) ? { commands: commandsQ.map((c) => c.name).sort() } : {}),
  }));
}

function cacheKey(path: string, versionLine: string): string | undefined {
  try {
    const st = statSync(path);
    return createHash('sha256').update(JSON.stringify([PROFILE_FORMAT, path, st.size, st.mtimeMs, versionLine])).digest('hex').slice(0, 24);
  } catch {
    return undefined;
  }
}

export interface ResolvedProfile {
  profile: QemuProfile;
  /** Why a bundled profile serves (no QEMU, or it could not be read), for the user to see. */
  note?: string;
}

const memo = new Map<string, Promise<ResolvedProfile>>();

/**
 * The profile of the QEMU the user runs, from the on-disk cache or read from
 * the binary (and then cached). Where there is no usable QEMU, the nearest
 * bundled profile serves and `note` says so.
 */
export function userProfile(env: NodeJS.ProcessEnv = process.env, bin = userQemuBinary(env)): Promise<ResolvedProfile> {
  let p = memo.get(bin);
  if (!p) {
    const known = knownProfile(env, bin);
    p = known.resolved ? Promise.resolve(known.resolved) : readAndKeep(known, env, archOfBinary(bin));
    memo.set(bin, p);
  }
  return p;
}

/**
 * What can be known without reading the binary's types: no binary at all (a
 * bundled profile), or its profile in the on-disk cache; else what reading it
 * needs. Synchronous (one `--version`), so that a language server can judge
 * its first documents for the right QEMU when the profile was read before.
 */
export function knownProfile(env: NodeJS.ProcessEnv = process.env, bin = userQemuBinary(env)): { resolved?: ResolvedProfile; path?: string; line?: string; file?: string } {
  const path = resolveBinary(bin, env);
  if (!path) {
    const arch = archOfBinary(bin);
    const profile = bundledProfile(undefined, arch);
    const mine = bin === userQemuBinary(env) && env.MEMFABRIC_QEMU?.trim();
    return { resolved: { profile, note: `no QEMU binary '${bin}'${mine ? ' (MEMFABRIC_QEMU)' : ' in PATH'}: judging with the bundled QEMU ${profile.version}${arch === 'x86_64' ? '' : ` (${arch})`} profile` } };
  }
  const asked = qemuVersionLine(path, versionCacheDir(env));
  const line = asked ?? '';
  const key = asked !== undefined ? cacheKey(path, line) : undefined;
  const file = key && join(cacheDir(env), `${key}.json`);
  if (file) {
    try {
      const cached = loadProfile(JSON.parse(readFileSync(file, 'utf8')) as StoredProfile);
      if (cached.versionLine === line) return { resolved: { profile: cached } };
    } catch {
      // not cached yet (or unreadable): read it again
    }
  }
  return { path, line, file: file || undefined };
}

async function readAndKeep(known: { path?: string; line?: string; file?: string }, env: NodeJS.ProcessEnv, arch: string): Promise<ResolvedProfile> {
  const { path, line, file } = known;
  try {
    const profile = await readProfile(path!);
    if (file) keepFile(file, JSON.stringify(storeProfile(profile)));
    return { profile };
  } catch (e) {
    const vv = /version (\d+\.\d+(?:\.\d+)?)/.exec(line ?? '')?.[1];
    const profile = bundledProfile(vv, arch);
    return { profile, note: `${(e as Error).message}; judging with the bundled QEMU ${profile.version} profile` };
  }
}

/**
 * The profile nodes of another architecture than the user's QEMU are judged
 * with: qemu-system-<arch> from PATH (read and cached like the user's), else
 * the bundled profile of that architecture (with a note saying so).
 */
export function archProfile(arch: string, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedProfile> {
  return userProfile(env, `qemu-system-${arch}`);
}

/** Forget what was read in this process (the binary changed, or a test wants a fresh read). */
export function forgetProfiles(): void {
  memo.clear();
}
