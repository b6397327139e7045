import { compareVersions } from '../qemu/profile';

/**
 * Which QEMU and SeaBIOS the layout is predicted for, and what that changes.
 * Two pairs are modelled and checked against the real binaries
 * (test/layout-firmware.test.ts): QEMU 7.2 with SeaBIOS 1.16.2 (Debian
 * bookworm) and QEMU 10.0 with SeaBIOS 1.16.3 (bookworm-backports).
 * Other versions are mapped onto the rules of the release that introduced
 * them (QEMU 8.2 for the host-side changes, SeaBIOS 1.16.3 for the firmware);
 * whatever changed after 10.0 / 1.16.3 is not modelled.
 */

/** What a caller says it runs (a host profile carries at least these two fields). */
export interface LayoutQemu {
  /** QEMU version, e.g. '10.0.2'. */
  version: string;
  /** SeaBIOS version, e.g. '1.16.3' (default: the one that QEMU release ships). */
  firmware?: string;
}

export const DEFAULT_LAYOUT_QEMU: Required<LayoutQemu> = { version: '7.2.22', firmware: '1.16.2' };

export interface LayoutTarget {
  qemu: string;
  firmware: string;
  /**
   * QEMU < 8.2: the CXL host-register block starts after the device-memory
   * region even without maxmem, i.e. at the above-4G RAM end rounded up to
   * 1 GiB. 8.2+ ("hw/i386/cxl: ensure maxram is greater than ram size for
   * calculating cxl range"): at the RAM end itself when there is no maxmem.
   */
  cxlBaseAfterEmptyDeviceMemory: boolean;
  /**
   * QEMU < 8.2: pc_max_used_gpa is 2^phys-bits - 1 for phys-bits <= 32. 8.2+:
   * a CPU without long mode uses the end of device memory (or of RAM); a
   * 64-bit CPU the end of the 64-bit PCI hole, whatever its phys-bits.
   */
  maxUsedGpaByLongMode: boolean;
  /**
   * SeaBIOS 1.16.3: the 64-bit PCI window is placed from the top of the CPU's
   * physical address space down (and always used when there is RAM above
   * 4 GiB), hotplug bridges get a 64-bit prefetchable window of top >> 11.
   */
  firmwarePhysBits: boolean;
  /** Which recorded PCI catalog (BAR sizes, built-in functions) to use. */
  catalog: '7.2' | '10.0';
}

/** a >= b for dotted versions. */
function versionAtLeast(a: string, b: string): boolean {
  return compareVersions(a, b) >= 0;
}

/** The SeaBIOS a QEMU release bundles (8.2 moved to 1.16.3). */
export function bundledFirmware(qemu: string): string {
  return versionAtLeast(qemu, '8.2') ? '1.16.3' : '1.16.2';
}

export function layoutTarget(profile?: LayoutQemu): LayoutTarget {
  const qemu = profile?.version || DEFAULT_LAYOUT_QEMU.version;
  const firmware = profile?.firmware || (profile?.version ? bundledFirmware(qemu) : DEFAULT_LAYOUT_QEMU.firmware);
  const post82 = versionAtLeast(qemu, '8.2');
  return {
    qemu,
    firmware,
    cxlBaseAfterEmptyDeviceMemory: !post82,
    maxUsedGpaByLongMode: post82,
    firmwarePhysBits: versionAtLeast(firmware, '1.16.3'),
    catalog: versionAtLeast(qemu, '10.0') ? '10.0' : '7.2',
  };
}
