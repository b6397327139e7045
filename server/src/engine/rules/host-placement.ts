import { Rule } from './rule';
import { NodeModel } from '../model/model';
import { sharedFiles } from './util';
import { keepOn, keptOn } from '../kept';

/** The host a node runs on, as its URI says it (absent: this host). */
function hostOf(n: NodeModel): string {
  return n.host?.text ?? '';
}

/** The host files a node maps through ivshmem (shared memory-backend-file of an ivshmem-plain); kept per model (a kept node is not asked again). */
const FABRIC_FILES = Symbol('fabric files');
function fabricFiles(n: NodeModel): string[] {
  return keptOn<string[]>(n, FABRIC_FILES) ?? keepOn(n, FABRIC_FILES, sharedFiles(n).filter((f) => f.fabric).map((f) => f.path));
}

/**
 * Nodes of a cluster may run on several hosts (topology host=, libvirt
 * connection URIs), but ivshmem maps a file of the host QEMU runs on: nodes
 * that share a fabric file must run on one host, or each would map a file of
 * its own and nothing would be shared, without an error anywhere. Memory
 * shared across hosts would need a memory server (docs/topology.md).
 */
export const rule: Rule = {
  code: 'host-placement',
  severity: 'error',
  summary:
    'Nodes that share a fabric file (ivshmem-plain over a shared memory-backend-file) must run on the same host (host=): ivshmem maps a file of the host QEMU runs on, so nodes on two hosts would each map a file of their own and share nothing, silently.',
  checkCluster({ nodes, report }) {
    const first = new Map<string, NodeModel>();
    for (const n of nodes) {
      for (const f of fabricFiles(n)) {
        const prev = first.get(f);
        if (!prev) {
          first.set(f, n);
          continue;
        }
        if (hostOf(prev) === hostOf(n)) continue;
        const where = (x: NodeModel) => (x.host ? `host ${x.host.text}` : 'this host (no host=)');
        report(n, {
          span: n.host?.span() ?? n.nameSpan,
          message: `Node '${n.name}' runs on ${where(n)} but shares the fabric file ${f} with '${prev.name}', which runs on ${where(prev)}: ivshmem maps a file of the host QEMU runs on, so each host would have a file of its own and the nodes would share nothing. Run the nodes that share a fabric on one host (a fabric across hosts needs a memory server).`,
          related: [{ span: prev.host?.span() ?? prev.nameSpan, message: `'${prev.name}' runs on ${where(prev)}` }],
        });
      }
    }
  },
};
