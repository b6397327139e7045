/** Model → QEMU argv (an array, never a shell string). */
import { NodeModel } from '../model/model';

export const QEMU_BINARY = 'qemu-system-x86_64';

/**
 * The node's QEMU options in order. Options that come from several places
 * (-machine for the type and for each CXL window) stay separate: QEMU merges
 * repeated -machine options itself.
 */
export function nodeArgv(node: NodeModel, binary = node.arch === 'x86_64' ? QEMU_BINARY : `qemu-system-${node.arch}`): string[] {
  const argv = [binary];
  for (const a of node.args) {
    argv.push(`-${a.name}`);
    if (a.value !== undefined) argv.push(a.value.text);
  }
  return argv;
}

/** Quote an argv for display (POSIX sh single quotes where needed). Never executed. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
