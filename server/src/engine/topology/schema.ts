/**
 * The memfabric topology format (*.cluster.xml), defined with zod: for each
 * element, the attributes it takes and the children it may hold. The reader
 * validates every element against this table; docs/topology.md documents it.
 * Sizes are QEMU size strings (256M, 32G) and are checked by the QEMU rules
 * on the options they become, so they are plain strings here.
 */
import { z } from 'zod';

const id = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, 'an id starts with a letter and holds letters, digits, _ . -');
const size = z.string().min(1, 'a size such as 256M or 32G');
const uint = z.string().regex(/^(0x[0-9a-fA-F]+|\d+)$/, 'a whole number');
const onoff = z.enum(['on', 'off']);
const path = z.string().min(1, 'a host path');

export interface ElementSpec {
  attrs: z.ZodObject<z.ZodRawShape>;
  children: string[];
  /** Text content allowed (qemu, append). */
  text?: boolean;
  doc: string;
}

const nodeAttrs = {
  name: z.string().min(1),
  count: uint.optional(),
  template: id.optional(),
  machine: z.string().optional(),
  memory: size.optional(),
  maxmem: size.optional(),
  slots: uint.optional(),
  cpus: uint.optional(),
  'phys-bits': uint.optional(),
  /** The libvirt connection the node runs on (the libvirt backend), e.g. qemu+ssh://root@lab2/system. */
  host: z.string().regex(/^[a-z][a-z0-9+.-]*:\/\//, 'a libvirt connection URI such as qemu:///system or qemu+ssh://user@lab2/system').optional(),
};
const nodeChildren = ['attach', 'numa', 'backend', 'cxl', 'spm', 'egm', 'hostdev', 'append', 'qemu', 'guest'];

export const SCHEMA: Record<string, ElementSpec> = {
  cluster: {
    attrs: z.object({ name: id, xmlns: z.string().optional() }).strict(),
    children: ['guest', 'fabric', 'template', 'node'],
    doc: 'A named cluster of nodes (one QEMU virtual machine each).',
  },
  guest: {
    attrs: z.object({
      kernel: path.optional(), initrd: path.optional(), disk: path.optional(), append: z.string().optional(), image: z.enum(['builtin', 'none']).optional(),
      'kernel-version': z.enum(['6.1', '6.12']).optional().describe("The built-in image's Linux: 6.1 (Debian bookworm, ndctl 76.1) or 6.12 (bookworm-backports, with trixie's ndctl 81: volatile CXL regions, poison lists, cxl trace events). Default: 6.12 when the node's QEMU is 8.0 or newer (10.0), 6.1 for QEMU 7.2."),
    }).strict(),
    children: [],
    doc: 'What the nodes boot: the built-in guest image (default; kernel-version chooses its Linux, 6.1 or 6.12), or a kernel, initrd or disk image of your own, with extra kernel arguments.',
  },
  fabric: {
    attrs: z.object({ id, size, path, master: onoff.optional() }).strict(),
    children: [],
    doc: 'A fabric-attached memory region: one host file shared by every node that attaches it (memory-backend-file,share=on + ivshmem-plain).',
  },
  template: {
    attrs: z.object({ id, ...Object.fromEntries(Object.entries(nodeAttrs).filter(([k]) => k !== 'name' && k !== 'count' && k !== 'template')) }).strict(),
    children: nodeChildren,
    doc: 'Attributes and children shared by the nodes that name it.',
  },
  node: {
    attrs: z.object(nodeAttrs).strict(),
    children: nodeChildren,
    doc: 'One node, or `count` nodes named from a pattern: {n} is 1, 2, …; {n:02} pads to two digits; {i} counts from 0.',
  },
  attach: {
    attrs: z.object({ fabric: id, bus: z.string().optional() }).strict(),
    children: [],
    doc: 'Attach a fabric region to this node: it appears as BAR2 of an ivshmem-plain PCI device.',
  },
  numa: {
    attrs: z.object({}).strict(),
    children: ['cell'],
    doc: 'NUMA cells; their sizes must add up to the node memory.',
  },
  cell: {
    attrs: z.object({ id: uint, size, cpus: z.string().optional(), path: path.optional(), align: size.optional(), share: onoff.optional() }).strict(),
    children: [],
    doc: 'A NUMA cell backed by RAM, or by a file or DAX device when `path` is given.',
  },
  backend: {
    attrs: z
      .object({ id, type: z.enum(['ram', 'file', 'memfd']).optional(), size, path: path.optional(), share: onoff.optional(), align: size.optional(), pmem: onoff.optional(), prealloc: onoff.optional(), 'discard-data': onoff.optional() })
      .strict(),
    children: [],
    doc: 'A memory backend (-object memory-backend-*), for raw devices in <qemu>.',
  },
  cxl: {
    attrs: z.object({}).strict(),
    children: ['host-bridge', 'window'],
    doc: 'A CXL topology: host bridges, root ports, switches, Type 3 devices, and fixed memory windows. Turns on the machine\'s cxl=on.',
  },
  'host-bridge': {
    attrs: z.object({ id: id.optional(), 'bus-nr': uint.optional() }).strict(),
    children: ['root-port'],
    doc: 'A CXL host bridge (pxb-cxl).',
  },
  'root-port': {
    attrs: z.object({ id: id.optional(), port: uint.optional(), chassis: uint.optional(), slot: uint.optional() }).strict(),
    children: ['type3', 'switch'],
    doc: 'A CXL root port (cxl-rp) under its host bridge.',
  },
  switch: {
    attrs: z.object({ id: id.optional() }).strict(),
    children: ['downstream'],
    doc: 'A CXL switch: its upstream port (cxl-upstream) sits on the root port.',
  },
  downstream: {
    attrs: z.object({ id: id.optional(), port: uint.optional(), chassis: uint.optional(), slot: uint.optional() }).strict(),
    children: ['type3'],
    doc: 'A downstream port of a CXL switch (cxl-downstream).',
  },
  type3: {
    attrs: z.object({
      id: id.optional(), size: size.optional(), path: path.optional(), align: size.optional(), 'lsa-size': size.optional(), 'lsa-path': path.optional(), sn: uint.optional(),
      kind: z.enum(['persistent', 'volatile']).optional(),
      'dc-size': size.optional(), 'dc-regions': uint.optional(), 'dc-path': path.optional(),
    }).strict(),
    children: [],
    doc: 'A CXL Type 3 memory device (cxl-type3) with its capacity `size` (a file, a DAX device, or RAM when no path) and label storage area. kind="volatile" makes its capacity volatile (volatile-memdev, QEMU 8.1 and later, no label storage needed); the default is persistent. dc-size adds dynamic capacity (volatile-dc-memdev, QEMU 9.1 and later) split into dc-regions equal regions (num-dc-regions, default 1), in RAM or on the file dc-path; a device may have dynamic capacity only (no size).',
  },
  window: {
    attrs: z.object({ size, targets: z.string().min(1, 'host bridge ids separated by spaces'), granularity: size.optional(), region: z.enum(['ram', 'pmem']).optional(), dax: z.enum(['devdax', 'system-ram', 'fsdax']).optional() }).strict(),
    children: [],
    doc: 'A CXL fixed memory window interleaved across the listed host bridges. region="ram" or "pmem" asks boot to make a region in the guest across every Type 3 device below those host bridges (cxl create-region on this window\'s root decoder), and dax= what to make of it: devdax (/dev/daxN.M), system-ram (kmem: a new NUMA node) or fsdax (pmem only).',
  },
  spm: {
    attrs: z.object({ start: size, size }).strict(),
    children: [],
    doc: 'Specific Purpose Memory: a RAM range the guest kernel marks soft-reserved (memmap=SIZE%START-1+0xefffffff), for dax_hmem to claim.',
  },
  egm: {
    attrs: z.object({ id, path, size, 'pci-dev': id, 'numa-node': uint }).strict(),
    children: [],
    doc: 'NVIDIA Grace Extended GPU Memory: a NUMA node backed by /dev/egmN and bound to a GPU (needs NVIDIA\'s QEMU; aarch64).',
  },
  hostdev: {
    attrs: z.object({ id, host: z.string().regex(/^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/, 'a PCI address such as 0000:01:00.0') }).strict(),
    children: [],
    doc: 'A host PCI device passed through with vfio-pci.',
  },
  append: { attrs: z.object({}).strict(), children: [], text: true, doc: 'Extra guest kernel arguments.' },
  qemu: { attrs: z.object({}).strict(), children: [], text: true, doc: 'Raw QEMU options, as on a command line: the escape hatch.' },
};
