import type { FieldTable } from '../protocol/field-types.js';
import { bindingArgsKey } from '../protocol/binding-args-key.js';
import type { Binding, RoutingTable } from './routing-table.js';
import type { RouteSink } from './route-set.js';

/**
 * Binding bookkeeping shared by the four exchange types: identity (dest, routingKey,
 * args), idempotent bind/unbind, per-destination removal and listing. Subclasses only
 * maintain their routing structure through addRoute/removeRoute and implement route().
 */
export abstract class AbstractRoutingTable<D> implements RoutingTable<D> {
  readonly #byDest = new Map<D, Map<string, Binding<D>>>();
  #count = 0;

  /** called before anything changes; throws AmqpChannelError to reject the bind */
  protected validateBinding(_routingKey: string, _args: FieldTable): void {}
  protected abstract addRoute(binding: Binding<D>): void;
  protected abstract removeRoute(binding: Binding<D>): void;
  abstract route(routingKey: string, headers: FieldTable | undefined, out: RouteSink<D>): void;

  bind(dest: D, routingKey: string, args: FieldTable): boolean {
    const id = bindingId(routingKey, args);
    let forDest = this.#byDest.get(dest);
    // RabbitMQ: binding an existing binding again is a no-op (no validation either,
    // since it was validated when first added)
    if (forDest?.has(id)) return false;
    this.validateBinding(routingKey, args);
    // copy: the caller's table must not be able to change a compiled binding
    const binding: Binding<D> = { dest, routingKey, args: new Map(args) };
    this.addRoute(binding);
    if (forDest === undefined) {
      forDest = new Map();
      this.#byDest.set(dest, forDest);
    }
    forDest.set(id, binding);
    this.#count++;
    return true;
  }

  unbind(dest: D, routingKey: string, args: FieldTable): boolean {
    const forDest = this.#byDest.get(dest);
    if (forDest === undefined) return false;
    const id = bindingId(routingKey, args);
    const binding = forDest.get(id);
    if (binding === undefined) return false;
    this.removeRoute(binding);
    forDest.delete(id);
    if (forDest.size === 0) this.#byDest.delete(dest);
    this.#count--;
    return true;
  }

  removeDestination(dest: D): number {
    const forDest = this.#byDest.get(dest);
    if (forDest === undefined) return 0;
    for (const binding of forDest.values()) this.removeRoute(binding);
    this.#byDest.delete(dest);
    this.#count -= forDest.size;
    return forDest.size;
  }

  hasBindings(): boolean {
    return this.#count > 0;
  }

  bindingCount(): number {
    return this.#count;
  }

  *bindings(): IterableIterator<Binding<D>> {
    for (const forDest of this.#byDest.values()) yield* forDest.values();
  }

  hasBinding(dest: D, routingKey: string, args: FieldTable): boolean {
    return this.#byDest.get(dest)?.has(bindingId(routingKey, args)) ?? false;
  }
}

function bindingId(routingKey: string, args: FieldTable): string {
  // length prefix: routing keys may contain any character, so no separator is safe
  return `${routingKey.length}:${routingKey}${bindingArgsKey(args)}`;
}
