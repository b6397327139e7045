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
import profile72 from './profile-7.2.json';
import profile100 from './profile-10.0.json';

export interface PropInfo {
  type: string;
  /** QEMU's default, as QMP reports it (absent when QEMU reports none). */
  default?: string | number | boolean | null;
}

export interface QemuProfile {
  /** "10.0.2" */
  version: string;
  /** The first line of `--version`. */
  versionLine: string;
  /** The BIOS the binary loads for pc/q35: { name: 'SeaBIOS', version: '1.16.3' }. */
  firmware?: { name: string; version: string; line?: string };
  /** Where the profile came from: the binary that was asked, or a bundled copy. */
  origin: { kind: 'binary'; path: string } | { kind: 'bundled' };
  devices: Record<string, { bus: string | null; props: Record<string, PropInfo> }>;
  objects: Record<string, { props: Record<string, PropInfo> }>;
  machines: Record<string, { alias: string | null; desc: string; isDefault?: boolean; defaultCpu?: string }>;
  machineProps: { q35: Record<string, PropInfo>; pc: Record<string, PropInfo> };
  /** Host bridges' properties (set with -global). */
  globals: Record<string, Record<string, PropInfo>>;
}

/** The profiles bundled with memfabric, oldest first. */
export const BUNDLED: readonly QemuProfile[] = [
  { ...(profile72 as unknown as QemuProfile), origin: { kind: 'bundled' } },
  { ...(profile100 as unknown as QemuProfile), origin: { kind: 'bundled' } },
];

/** [major, minor, micro] of "10.0.2" (missing parts are 0). */
export function versionParts(v: string): number[] {
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] : [0, 0, 0];
}

export function compareVersions(a: string, b: string): number {
  const x = versionParts(a);
  const y = versionParts(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

/** The profile's QEMU is `v` or newer ("8.1" means 8.1.0). */
export function qemuAtLeast(p: Pick<QemuProfile, 'version'>, v: string): boolean {
  return compareVersions(p.version, v) >= 0;
}

/** major.minor: "10.0". */
export function shortVersion(v: string): string {
  const [a, b] = versionParts(v);
  return `${a}.${b}`;
}

/**
 * The bundled profile nearest to a version (by major.minor: a 9.2 is judged
 * as 10.0, an 8.0 as 7.2); without a version, the newest.
 */
export function bundledProfile(version?: string): QemuProfile {
  if (!version) return BUNDLED[BUNDLED.length - 1];
  const key = (v: string) => versionParts(v)[0] * 100 + versionParts(v)[1];
  let best = BUNDLED[0];
  for (const p of BUNDLED) if (Math.abs(key(p.version) - key(version)) <= Math.abs(key(best.version) - key(version))) best = p;
  return best;
}

/** The default profile of the pure engine when its caller names none: QEMU 7.2 (Debian bookworm's). */
export const DEFAULT_PROFILE: QemuProfile = BUNDLED[0];

/** What the layout model needs of a profile: the QEMU and firmware versions. */
export function layoutQemu(p: QemuProfile): { version: string; firmware?: string } {
  return { version: p.version, firmware: p.firmware?.version };
}

/** "QEMU 10.0.2, SeaBIOS 1.16.3" (and "(bundled profile)" when no binary was asked). */
export function profileLabel(p: QemuProfile): string {
  const fw = p.firmware ? `, ${p.firmware.name} ${p.firmware.version}` : '';
  return `QEMU ${p.version}${fw}${p.origin.kind === 'bundled' ? ' (bundled profile)' : ''}`;
}
