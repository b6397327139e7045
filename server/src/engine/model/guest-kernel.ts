/**
 * Which of memfabric's built-in guests a topology node boots (its
 * <guest kernel-version>, else the default for the QEMU it runs), as far as
 * the engine needs it: the rules about what its tools can do, and the names
 * its kernel gives in /proc/iomem. runtime/image.ts builds the images; its
 * defaultGuestKernel makes the same choice from the QEMU binary.
 */
import { NodeModel } from './model';
import { compareVersions } from '../qemu/profile';

export type BuiltinLinux = '6.1' | '6.12';

/** 6.12 for QEMU 8.0 and later, else 6.1; undefined when the node boots a kernel of the user's or no guest. */
export function guestKernelOf(node: NodeModel, qemuVersion: string): BuiltinLinux | undefined {
  if (!node.guestKernel) return undefined;
  if (node.guestKernel === '6.1' || node.guestKernel === '6.12') return node.guestKernel;
  return compareVersions(qemuVersion, '8.0') >= 0 ? '6.12' : '6.1';
}
