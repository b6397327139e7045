/**
 * A value computed from an object alone, kept on the object under a symbol of
 * the caller's, not enumerable (no walk over fields, spread or JSON sees it;
 * a copy of the object does not carry it). Not in a WeakMap keyed by the
 * object: V8 (Node 20) keeps whatever an old WeakMap's values hold alive
 * through young-generation collections, and every model, finding and element
 * of every analysis dropped since the last full collection was promoted
 * through them (0.1–0.15 MB for each analysis of the 40-node cluster, and the
 * old generation grew by 0.4 MB at every young collection). A derived model
 * (engine/shapes.ts) keeps such values in its Origin.
 */
export function keptOn<T>(o: object, key: symbol): T | undefined {
  return (o as Record<symbol, T | undefined>)[key];
}

/**
 * An object that keeps such values in a record of its own answers this with
 * the record (a derived model, a proxy: engine/shapes.ts); the value goes
 * there without a defineProperty (200 ns each, and a proxy's trap on top).
 */
export const KEEPS = Symbol('keeps');

export function keepOn<T>(o: object, key: symbol, value: T): T {
  const own = (o as { [KEEPS]?: Record<symbol, unknown> })[KEEPS];
  if (own) own[key] = value;
  else Object.defineProperty(o, key, { value, writable: true, configurable: true });
  return value;
}
