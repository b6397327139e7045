/**
 * What QEMU 7.2 knows, recorded from the real binary by
 * scripts/gen-qemu-catalog.mjs: device and object types and their properties,
 * machine types and machine properties.
 */
import catalogJson from './catalog-7.2.json';

interface Catalog {
  version: string;
  devices: Record<string, { bus: string | null; props: Record<string, string> }>;
  objects: Record<string, { props: Record<string, string> }>;
  machines: Record<string, { alias: string | null; desc: string }>;
  machineProps: { q35: Record<string, string>; pc: Record<string, string> };
  globals: Record<string, Record<string, string>>;
}

export const catalog = catalogJson as Catalog;
export const LAYOUT_QEMU_VERSION = '7.2';

/** Properties every -device accepts besides its own (qdev generic options). */
const GENERIC_DEVICE_PROPS = new Set(['driver', 'id', 'bus']);
/** Accelerator options QEMU still takes on -machine (vl.c legacy handling). */
const LEGACY_MACHINE_PROPS = new Set(['type', 'accel', 'kernel-irqchip', 'kernel_irqchip', 'kvm-shadow-mem', 'kvm_shadow_mem', 'dump-guest-core', 'mem-merge', 'usb', 'graphics']);

export function deviceKnown(driver: string): boolean {
  return driver in catalog.devices;
}

export function objectKnown(type: string): boolean {
  return type in catalog.objects;
}

export function deviceHasProp(driver: string, key: string): boolean {
  return GENERIC_DEVICE_PROPS.has(key) || key in (catalog.devices[driver]?.props ?? {});
}

export function objectHasProp(type: string, key: string): boolean {
  return key === 'id' || key === 'qom-type' || key in (catalog.objects[type]?.props ?? {});
}

/** The QOM type name QEMU prints in errors for a machine, e.g. pc-q35-7.2-machine. */
export function machineQomName(type: string | undefined): string {
  const t = type ?? 'pc';
  const real = catalog.machines[t]?.alias ?? t;
  return `${real}-machine`;
}

export function machineHasProp(base: 'q35' | 'pc' | 'other', key: string): boolean {
  if (LEGACY_MACHINE_PROPS.has(key) || key.startsWith('cxl-fmw.')) return true;
  if (base === 'other') return true;
  return key in catalog.machineProps[base] || key.startsWith('memory.') || key.startsWith('smp.');
}

/** The host bridge whose property this is, for "set it with -global" fixes. */
export function hostBridgeFor(base: 'q35' | 'pc' | 'other'): string {
  return base === 'q35' ? 'q35-pcihost' : 'i440FX-pcihost';
}

export function hostBridgeHasProp(driver: string, key: string): boolean {
  return key in (catalog.globals[driver] ?? {});
}
