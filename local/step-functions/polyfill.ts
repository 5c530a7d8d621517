/**
 * `Promise.withResolvers` (ES2024, Node ≥ 22) for Node 20: aws-local-stepfunctions calls it in
 * every Task state. Installed once when this module loads, only where it is missing.
 */

interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

type PromiseWithResolvers = { withResolvers?: <T>() => Resolvers<T> };

function withResolvers<T>(this: PromiseConstructor): Resolvers<T> {
  let resolve!: Resolvers<T>['resolve'];
  let reject!: Resolvers<T>['reject'];
  // `this` as the constructor, as the spec does, so a Promise subclass gets its own kind.
  const promise = new this<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Installs the polyfill if needed; true when this call installed it. */
export function installPromiseWithResolvers(): boolean {
  if (typeof (Promise as PromiseWithResolvers).withResolvers === 'function') return false;
  Object.defineProperty(Promise, 'withResolvers', {
    value: withResolvers,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  return true;
}

installPromiseWithResolvers();
