import { Rule } from './rule';

/**
 * Raised from a probe (engine/qemu/verdict.ts): the probe never touches user
 * data, so it ran QEMU with stand-ins for backing files and host devices; this
 * says where a stand-in could make the real run decide otherwise, or why the
 * probe could not tell.
 */
export const rule: Rule = {
  code: 'probe-stand-in',
  severity: 'information',
  summary:
    '`--probe` runs QEMU with scratch stand-ins for backing files and host devices (the user\'s files are never opened for writing); where a stand-in could change the outcome (a DAX device\'s alignment, a file of another size), or the probe could not run the node at all, it says so.',
};
