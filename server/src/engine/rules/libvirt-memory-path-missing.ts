import { Rule } from './rule';

/**
 * libvirt opens the file of an nvdimm or virtio-pmem <source><path> itself
 * before QEMU runs (the DAC security driver labels it, src/security/security_dac.c,
 * and AppArmor adds it to the profile), so unlike a -object memory-backend-file
 * of <qemu:commandline>, which QEMU would create, a missing file stops the
 * start. `domxml-to-native` does not get that far: only a real start shows it
 * (recorded in test/corpus/libvirt/015-nvdimm-missing-file).
 */
export const rule: Rule = {
  code: 'libvirt-memory-path-missing',
  severity: 'error',
  summary:
    "The <source><path> of an nvdimm or virtio-pmem memory device must exist when libvirt starts the domain: libvirt labels it before QEMU runs and does not create it. Create the file (truncate -s SIZE PATH) or the device first.",
  enforcedBy: 'unable to stat: PATH: No such file or directory',
  check({ node, host, report }) {
    // Only a real file system says a path is missing (NO_HOST knows nothing).
    if (!host.real || node.kind !== 'libvirt') return;
    for (const p of node.libvirtPaths ?? []) {
      if (!p.path.text || host.stat(p.path.text)) continue;
      report({
        span: p.path.span(),
        message: `${p.path.text} does not exist: libvirt opens the file of an ${p.what} itself before QEMU runs and does not create it, so the domain does not start. libvirt 9.0: "unable to stat: ${p.path.text}: No such file or directory". Create it first (e.g. truncate -s SIZE ${p.path.text}).`,
      });
    }
  },
};
