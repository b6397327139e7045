/** Load an ES module from compiled CommonJS tests (tsc would turn import() into require()). */
// eslint-disable-next-line @typescript-eslint/no-implied-eval
export const importEsm = new Function('p', 'return import(p)') as <T = any>(p: string) => Promise<T>;
