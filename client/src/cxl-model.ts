/**
 * The choices of the CXL actions (Inject Poison/Event/Error…), as the CLI takes
 * them (server/src/runtime/cxl-control.ts, QEMU 10.0's qapi/cxl.json). Kept
 * here so that the extension bundle does not pull in the engine;
 * test/client-package.test.ts checks they equal the CLI's.
 */
export const EVENT_KINDS = ['general-media', 'dram', 'memory-module'];
export const EVENT_LOGS = ['informational', 'warning', 'failure', 'fatal'];
export const UNCOR_ERROR_TYPES = ['cache-data-parity', 'cache-address-parity', 'cache-be-parity', 'cache-data-ecc', 'mem-data-parity', 'mem-address-parity', 'mem-be-parity', 'mem-data-ecc', 'reinit-threshold', 'rsvd-encoding', 'poison-received', 'receiver-overflow', 'internal', 'cxl-ide-tx', 'cxl-ide-rx'];
export const COR_ERROR_TYPES = ['cache-data-ecc', 'mem-data-ecc', 'crc-threshold', 'retry-threshold', 'cache-poison-received', 'mem-poison-received', 'physical'];
