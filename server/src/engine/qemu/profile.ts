/**
 * A QEMU profile: what one QEMU binary knows and does, as data the pure engine
 * is handed (like HostProbe): its version, the firmware it loads, its machine
 * types, and its device and object types with their properties, types and
 * defaults. server/src/host/qemu-profile.ts reads it from the binary the user
 * runs (QMP and -help, one run each); the bundled profiles (profile-7.2.json,
 * profile-10.0.json) were made by that same code from Debian's QEMU 7.2 and
 * bookworm-backports' 10.0 (`node scripts/gen-qemu-profile.mjs BINARY`), and
 * serve where no QEMU is installed.
 */

export interface PropInfo {
  type: string;
  /** QEMU's default, as QMP reports it (absent when QEMU reports none). */
  default?: string | number | boolean | null;
}

export interface QemuProfile {
  /** The guest architecture the binary emulates, as QMP query-target names it: "x86_64", "aarch64". */
  arch: string;
  /** "10.0.2" */
  version: string;
  /** The first line of `--version`. */
  versionLine: string;
  /** The BIOS the binary loads for pc/q35 (none for other architectures): { name: 'SeaBIOS', version: '1.16.3' }. */
  firmware?: { name: string; version: string; line?: string };
  /** Where the profile came from: the binary that was asked, or a bundled copy. */
  origin: { kind: 'binary'; path: string } | { kind: 'bundled' };
  devices: Record<string, { bus: string | null; props: Record<string, PropInfo> }>;
  objects: Record<string, { props: Record<string, PropInfo> }>;
  machines: Record<string, { alias: string | null; desc: string; isDefault?: boolean; defaultCpu?: string }>;
  /** The pc/q35 machines' properties (empty for other architectures). */
  machineProps: { q35: Record<string, PropInfo>; pc: Record<string, PropInfo> };
  /** Host bridges' properties (set with -global). */
  globals: Record<string, Record<string, PropInfo>>;
  /**
   * The QMP commands the binary has (QMP query-commands), sorted: what a
   * running node of this QEMU can be asked (runtime/cxl-control.ts). Absent in
   * a profile read before it was recorded.
   */
  commands?: string[];
}

/**
 * A profile as it is stored (the bundled JSON files, the on-disk cache of the
 * user's): a device whose properties are those of an earlier device names
 * that device (`sameProps`) instead of repeating them. An x86 QEMU's 130-150
 * CPU models are 90% of its profile and have two distinct property lists
 * between them: stored this way, profile-10.0.json is 0.3 MB instead of
 * 2.7 MB, and the loaded profile 0.8 MB of heap instead of 7 MB.
 */
export type StoredProfile = Omit<QemuProfile, 'devices' | 'origin'> & {
  origin?: QemuProfile['origin'];
  devices: Record<string, { bus: string | null; props: Record<string, PropInfo> } | { bus: string | null; sameProps: string }>;
};

/** The stored form of a profile: each distinct non-empty property list once, under the first device that has it. */
export function storeProfile(p: QemuProfile): StoredProfile {
  const first = new Map<string, string>();
  const devices: StoredProfile['devices'] = {};
  for (const [name, d] of Object.entries(p.devices)) {
    const key = Object.keys(d.props).length ? JSON.stringify(d.props) : undefined;
    const same = key === undefined ? undefined : first.get(key);
    if (same === undefined) {
      devices[name] = d;
      if (key !== undefined) first.set(key, name);
    } else devices[name] = { bus: d.bus, sameProps: same };
  }
  return { ...p, devices };
}

/**
 * A stored profile, loaded: devices that name another's properties share that
 * one object (read only, as every profile is). A profile stored without
 * `sameProps` (an older cache entry) is taken as it is.
 */
export function loadProfile(s: StoredProfile): QemuProfile {
  const devices: QemuProfile['devices'] = {};
  for (const [name, d] of Object.entries(s.devices)) {
    if ('props' in d) devices[name] = d;
    else {
      const like = devices[d.sameProps];
      // (written by storeProfile, the named device comes first; a hand-edited file may not)
      devices[name] = { bus: d.bus, props: like ? like.props : {} };
    }
  }
  return { ...s, devices } as QemuProfile;
}

/** What a bundled profile says of itself; its lists (devices, objects, machines …) stay in its JSON file until asked for. */
type ProfileHead = Pick<QemuProfile, 'arch' | 'version' | 'versionLine' | 'firmware'>;
const BODY_KEYS = ['devices', 'objects', 'machines', 'machineProps', 'globals', 'commands'] as const;

/**
 * A bundled profile whose lists are read from its JSON file the first time one
 * is used: a server judging with the user's own QEMU mostly needs none of
 * them (the three files are 0.7 MB of JSON, 1.9 MB of heap once loaded, as
 * stored: StoredProfile; 5 MB and 18 MB with every device's properties
 * spelled out).
 * test/qemu-profile.test.ts checks that each head matches its file.
 */
function bundled(head: ProfileHead, load: () => QemuProfile): QemuProfile {
  let body: QemuProfile | undefined;
  const p = { ...head, origin: { kind: 'bundled' } } as QemuProfile;
  for (const k of BODY_KEYS) Object.defineProperty(p, k, { enumerable: true, configurable: true, get: () => (body ??= load())[k] });
  return p;
}

/** The profiles bundled with memfabric, oldest first per architecture: qemu-system-x86_64 7.2 and 10.0, qemu-system-aarch64 7.2. */
export const BUNDLED: readonly QemuProfile[] = [
  bundled(
    { arch: 'x86_64', version: '7.2.22', versionLine: 'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)', firmware: { name: 'SeaBIOS', version: '1.16.2', line: 'SeaBIOS (version 1.16.2-debian-1.16.2-1)' } },
    () => loadProfile(require('./profile-7.2.json') as StoredProfile),
  ),
  bundled(
    { arch: 'x86_64', version: '10.0.2', versionLine: 'QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)', firmware: { name: 'SeaBIOS', version: '1.16.3', line: 'SeaBIOS (version 1.16.3-debian-1.16.3-2~bpo12+1)' } },
    () => loadProfile(require('./profile-10.0.json') as StoredProfile),
  ),
  bundled({ arch: 'aarch64', version: '7.2.22', versionLine: 'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)' }, () => loadProfile(require('./profile-aarch64-7.2.json') as StoredProfile)),
];

/** The architectures memfabric has a bundled profile for. */
export const BUNDLED_ARCHES: readonly string[] = [...new Set(BUNDLED.map((p) => p.arch))];

/**
 * What the engine is handed to judge with: one profile (the QEMU the user
 * runs, for its own architecture), or one per architecture
 * ({ x86_64: …, aarch64: … }). A node of an architecture none is given for is
 * judged with the bundled profile of that architecture nearest in version.
 */
export type QemuProfiles = QemuProfile | { readonly [arch: string]: QemuProfile | undefined };

function isProfile(q: QemuProfiles): q is QemuProfile {
  return typeof (q as QemuProfile).version === 'string' && typeof (q as QemuProfile).devices === 'object';
}

/** The profile a node of `arch` is judged with (engine/index.ts). */
export function profileFor(q: QemuProfiles | undefined, arch: string): QemuProfile {
  if (!q) return arch === DEFAULT_PROFILE.arch ? DEFAULT_PROFILE : bundledProfile(DEFAULT_PROFILE.version, arch);
  if (isProfile(q)) return q.arch === arch ? q : bundledProfile(q.version, arch);
  const own = q[arch];
  if (own) return own;
  const any = Object.values(q).find((p): p is QemuProfile => !!p);
  return bundledProfile(any?.version ?? DEFAULT_PROFILE.version, arch);
}

/** The profiles of a QemuProfiles, for labels and keys. */
export function profilesOf(q: QemuProfiles): QemuProfile[] {
  return isProfile(q) ? [q] : Object.values(q).filter((p): p is QemuProfile => !!p);
}

/** [major, minor, micro] of "10.0.2" (missing parts are 0). */
/** Versions read so far (a handful of strings; every node's rules compare them again). Bounded. */
const VERSIONS = new Map<string, readonly number[]>();
function partsOf(v: string): readonly number[] {
  let p = VERSIONS.get(v);
  if (!p) {
    const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v.trim());
    p = m ? [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] : [0, 0, 0];
    if (VERSIONS.size < 256) VERSIONS.set(v, p);
  }
  return p;
}
export function versionParts(v: string): number[] {
  return [...partsOf(v)];
}

export function compareVersions(a: string, b: string): number {
  const x = partsOf(a);
  const y = partsOf(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

/** The profile's QEMU is `v` or newer ("8.1" means 8.1.0). */
export function qemuAtLeast(p: Pick<QemuProfile, 'version'>, v: string): boolean {
  return compareVersions(p.version, v) >= 0;
}

/** The profile's QEMU has the QMP command `name`; undefined when the profile does not record its commands. */
export function hasQmpCommand(p: Pick<QemuProfile, 'commands'>, name: string): boolean | undefined {
  return p.commands ? p.commands.includes(name) : undefined;
}

/** major.minor: "10.0". */
export function shortVersion(v: string): string {
  const [a, b] = versionParts(v);
  return `${a}.${b}`;
}

/**
 * The bundled profile of an architecture (default x86_64) nearest to a
 * version (by major.minor: a 9.2 is judged as 10.0, an 8.0 as 7.2); without a
 * version, the newest. An architecture without a bundled profile gets the
 * x86_64 one (its types are the nearest guess there is).
 */
export function bundledProfile(version?: string, arch = 'x86_64'): QemuProfile {
  const list = BUNDLED.filter((p) => p.arch === arch);
  const pool = list.length ? list : BUNDLED.filter((p) => p.arch === 'x86_64');
  if (!version) return pool[pool.length - 1];
  const key = (v: string) => versionParts(v)[0] * 100 + versionParts(v)[1];
  let best = pool[0];
  for (const p of pool) if (Math.abs(key(p.version) - key(version)) <= Math.abs(key(best.version) - key(version))) best = p;
  return best;
}

/** The default profile of the pure engine when its caller names none: QEMU 7.2 (Debian bookworm's). */
export const DEFAULT_PROFILE: QemuProfile = BUNDLED[0];

/** What the layout model needs of a profile: the QEMU and firmware versions. */
export function layoutQemu(p: QemuProfile): { version: string; firmware?: string } {
  return { version: p.version, firmware: p.firmware?.version };
}

/** "QEMU 10.0.2, SeaBIOS 1.16.3" (and "(bundled profile)" when no binary was asked; the architecture when it is not x86_64). */
export function profileLabel(p: QemuProfile): string {
  const fw = p.firmware ? `, ${p.firmware.name} ${p.firmware.version}` : '';
  return `QEMU ${p.version}${p.arch !== 'x86_64' ? ` (${p.arch})` : ''}${fw}${p.origin.kind === 'bundled' ? ' (bundled profile)' : ''}`;
}
