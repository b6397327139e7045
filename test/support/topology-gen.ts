/**
 * The generated topologies of `npm run bench` (scripts/bench.mjs), shared with
 * test/incremental.test.ts: (a) examples/the-machine-40.cluster.xml written
 * out node by node, each with NUMA cells and an interleaved two-host-bridge
 * CXL topology; (b) a ~1 MB cluster of the same kinds of nodes plus CXL
 * switches, file-backed NUMA cells, backends with raw <qemu> devices, SPM.
 * Line 2 is the comment the bench edits ("bench edit: 0").
 */
const pad = (i: number, w: number) => String(i).padStart(w, '0');
const hex = (n: number) => `0x${n.toString(16)}`;

/** A node of The Machine with NUMA and CXL memory interleaved across two host bridges. */
function cxlNode(name: string, i: number): string {
  return `  <node name="${name}" template="soc">
    <numa>
      <cell id="0" size="2G" cpus="0-1"/>
      <cell id="1" size="2G" cpus="2-3"/>
    </numa>
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12">
        <root-port id="rp0" port="0" chassis="0" slot="2">
          <type3 id="mem0" size="256M" path="cxl/${name}-mem0.raw" lsa-size="256M" lsa-path="cxl/${name}-lsa0.raw" sn="${hex(i * 16)}"/>
        </root-port>
      </host-bridge>
      <host-bridge id="cxl.2" bus-nr="222">
        <root-port id="rp1" port="0" chassis="0" slot="3">
          <type3 id="mem1" size="256M" path="cxl/${name}-mem1.raw" lsa-size="256M" lsa-path="cxl/${name}-lsa1.raw" sn="${hex(i * 16 + 1)}"/>
        </root-port>
      </host-bridge>
      <window size="4G" targets="cxl.1 cxl.2" granularity="8k"/>
      <window size="4G" targets="cxl.1"/>
    </cxl>
  </node>
`;
}

/** A node behind a CXL switch with two downstream ports. */
function switchNode(name: string, i: number): string {
  return `  <node name="${name}" template="soc">
    <numa>
      <cell id="0" size="4G" cpus="0-3"/>
    </numa>
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12">
        <root-port id="rp0" port="0" chassis="0" slot="1">
          <switch id="us0">
            <downstream id="swport0" port="0" chassis="0" slot="4">
              <type3 id="mem0" size="256M" path="cxl/${name}-sw0.raw" sn="${hex(i * 16 + 2)}"/>
            </downstream>
            <downstream id="swport1" port="1" chassis="0" slot="5">
              <type3 id="mem1" size="256M" path="cxl/${name}-sw1.raw" sn="${hex(i * 16 + 3)}"/>
            </downstream>
          </switch>
        </root-port>
      </host-bridge>
      <window size="4G" targets="cxl.1"/>
    </cxl>
  </node>
`;
}

/** File-backed NUMA cells, a backend of its own and a raw device in <qemu>. */
function rawNode(name: string): string {
  return `  <node name="${name}" template="soc">
    <numa>
      <cell id="0" size="2G" cpus="0-1" path="numa/${name}-0.raw" share="on"/>
      <cell id="1" size="2G" cpus="2-3"/>
    </numa>
    <backend id="scratch-${name}" type="file" size="128M" path="scratch/${name}.raw" share="on"/>
    <qemu>-device ivshmem-plain,id=scratch0,memdev=scratch-${name}</qemu>
  </node>
`;
}

/** Specific Purpose Memory carved out of RAM. */
function spmNode(name: string): string {
  return `  <node name="${name}" template="soc">
    <numa>
      <cell id="0" size="2G" cpus="0-1"/>
      <cell id="1" size="2G" cpus="2-3"/>
    </numa>
    <spm start="0x100000000" size="1G"/>
    <append>console=ttyS0 loglevel=4</append>
  </node>
`;
}

function cluster(nodes: string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- bench edit: 0 -->
<!--
  The Machine's scale (examples/the-machine-40.cluster.xml), node by node:
  every node maps the 64 TiB fabric and has its own NUMA cells and CXL memory.
-->
<cluster name="the-machine">
  <fabric id="fam" size="64T" path="/srv/fam/the-machine.fam"/>
  <template id="soc" machine="q35" memory="4G" maxmem="8G" slots="1" cpus="4" phys-bits="48">
    <attach fabric="fam"/>
  </template>
${nodes.join('')}</cluster>
`;
}

export function machine40(): string {
  const nodes: string[] = [];
  for (let i = 1; i <= 40; i++) nodes.push(cxlNode(`node${pad(i, 2)}`, i));
  return cluster(nodes);
}

export function megabyte(target = 1 << 20): string {
  const nodes: string[] = [];
  const kinds: ((name: string, i: number) => string)[] = [cxlNode, switchNode, rawNode, spmNode];
  let size = 600;
  for (let i = 1; size < target; i++) {
    const n = kinds[(i - 1) % kinds.length](`node${pad(i, 4)}`, i);
    nodes.push(n);
    size += n.length;
  }
  return cluster(nodes);
}

