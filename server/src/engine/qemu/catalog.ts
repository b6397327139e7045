/**
 * Questions about what one QEMU knows (its profile, qemu/profile.ts): device
 * and object types and their properties, machine types and machine properties.
 * The unknown-* rules, completion and hover ask these, so they follow the QEMU
 * the user runs rather than a hand-written list.
 */
import { QemuProfile } from './profile';

/** Properties every -device accepts besides its own (qdev generic options). */
const GENERIC_DEVICE_PROPS = new Set(['driver', 'id', 'bus']);
/** Accelerator options QEMU still takes on -machine (vl.c legacy handling). */
const LEGACY_MACHINE_PROPS = new Set(['type', 'accel', 'kernel-irqchip', 'kernel_irqchip', 'kvm-shadow-mem', 'kvm_shadow_mem', 'dump-guest-core', 'mem-merge', 'usb', 'graphics']);

export function deviceKnown(q: QemuProfile, driver: string): boolean {
  return Object.hasOwn(q.devices, driver);
}

export function objectKnown(q: QemuProfile, type: string): boolean {
  return Object.hasOwn(q.objects, type);
}

export function machineKnown(q: QemuProfile, type: string): boolean {
  return Object.hasOwn(q.machines, type);
}

export function deviceHasProp(q: QemuProfile, driver: string, key: string): boolean {
  return GENERIC_DEVICE_PROPS.has(key) || Object.hasOwn(q.devices[driver]?.props ?? {}, key);
}

export function objectHasProp(q: QemuProfile, type: string, key: string): boolean {
  return key === 'id' || key === 'qom-type' || Object.hasOwn(q.objects[type]?.props ?? {}, key);
}

/** The QOM type name QEMU prints in errors for a machine, e.g. pc-q35-7.2-machine. */
export function machineQomName(q: QemuProfile, type: string | undefined): string {
  const t = type ?? 'pc';
  const real = (Object.hasOwn(q.machines, t) ? q.machines[t].alias : null) ?? t;
  return `${real}-machine`;
}

export function machineHasProp(q: QemuProfile, base: 'q35' | 'pc' | 'other', key: string): boolean {
  if (LEGACY_MACHINE_PROPS.has(key) || key.startsWith('cxl-fmw.')) return true;
  if (base === 'other') return true;
  return Object.hasOwn(q.machineProps[base], key) || key.startsWith('memory.') || key.startsWith('smp.');
}

/** The host bridge whose property this is, for "set it with -global" fixes. */
export function hostBridgeFor(base: 'q35' | 'pc' | 'other'): string {
  return base === 'q35' ? 'q35-pcihost' : 'i440FX-pcihost';
}

export function hostBridgeHasProp(q: QemuProfile, driver: string, key: string): boolean {
  return Object.hasOwn(q.globals[driver] ?? {}, key);
}
