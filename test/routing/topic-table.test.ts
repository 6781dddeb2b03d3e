import { describe, expect, it } from 'vitest';
import { createRoutingTable } from '../../src/routing/routing-table.js';
import { splitTopicKey } from '../../src/routing/topic-trie.js';
import { dest, int, NO_ARGS, routeNames, table, type TestDest } from './routing-helpers.js';

/** [binding key, routing key, matches] — RabbitMQ 3.x semantics (rabbit_db_topic_exchange). */
const CASES: ReadonlyArray<readonly [string, string, boolean]> = [
  // `#` matches zero or more words, including the empty key (zero words)
  ['#', '', true],
  ['#', 'a', true],
  ['#', 'a.b.c', true],
  ['#', '.', true],
  ['#', 'a..b', true],
  ['#.#', '', true],
  ['#.#', 'a', true],
  ['#.#', 'a.b', true],
  ['#.#.#.#.#', 'a.b.c', true],
  ['#.#.#.#.#', '', true],
  // `*` is exactly one word; the empty key has none, "." has two empty ones
  ['*', '', false],
  ['*', 'a', true],
  ['*', 'a.b', false],
  ['*', '.', false],
  ['*', 'a.', false],
  ['*.*', '.', true],
  ['*.*', 'a.b', true],
  ['*.*', 'a', false],
  ['*.*', '', false],
  ['a.*', 'a.', true],
  ['a.*', 'a', false],
  ['*.a', '.a', true],
  // `#` in the middle, with backtracking
  ['a.#.b', 'a.b', true],
  ['a.#.b', 'a.x.y.b', true],
  ['a.#.b', 'a.b.b', true],
  ['a.#.b', 'a.b.c', false],
  ['a.#.b', 'a.x.b.y', false],
  ['a.#.b', 'a', false],
  ['a.#.b', 'b', false],
  ['a.#.b', 'a..b', true],
  ['#.a', 'a', true],
  ['#.a', 'x.a', true],
  ['#.a', 'x.y.a', true],
  ['#.a', 'a.a', true],
  ['#.a', 'a.x', false],
  ['#.a', '', false],
  ['a.#', 'a', true],
  ['a.#', 'a.b.c', true],
  ['a.#', 'b', false],
  ['a.#', '', false],
  ['a.#', 'a.', true],
  ['#.a.#', 'a', true],
  ['#.a.#', 'x.a.y', true],
  ['#.a.#', 'x.y', false],
  ['*.#', '', false],
  ['*.#', 'a', true],
  ['*.#', 'a.b', true],
  ['#.*', '', false],
  ['#.*', 'a', true],
  ['#.*', 'a.b.c', true],
  ['*.*.#', 'a', false],
  ['*.*.#', 'a.b', true],
  ['#.b.#.c', 'a.b.x.c', true],
  ['#.b.#.c', 'b.c', true],
  ['#.b.#.c', 'c.b', false],
  ['#.*.#', '', false],
  ['#.*.#', 'x', true],
  // empty words are real words
  ['a..b', 'a..b', true],
  ['a..b', 'a.b', false],
  ['a..b', 'a.x.b', false],
  ['a.*.b', 'a..b', true],
  ['a.*.b', 'a.b', false],
  ['', '', true],
  ['', 'a', false],
  ['', '.', false],
  ['.', '.', true],
  ['.', '', false],
  ['a.', 'a.', true],
  ['a.', 'a', false],
  // keys without dots; wildcards only as whole words
  ['abc', 'abc', true],
  ['abc', 'abcd', false],
  ['abc', 'ab', false],
  ['a*', 'a*', true],
  ['a*', 'ab', false],
  ['a#', 'a#', true],
  ['a#', 'a.b', false],
  ['a.b', 'a.*', false],
  ['a.*', 'a.*', true],
  ['a.b', 'a.#', false],
  ['a', 'a.#', false],
];

/** Naive reference matcher on word lists (exponential, fine for tiny inputs). */
function referenceMatch(pattern: readonly string[], words: readonly string[]): boolean {
  if (pattern.length === 0) return words.length === 0;
  const [head, ...rest] = pattern;
  if (head === '#') {
    for (let i = 0; i <= words.length; i++) if (referenceMatch(rest, words.slice(i))) return true;
    return false;
  }
  if (words.length === 0) return false;
  return (head === '*' || head === words[0]) && referenceMatch(rest, words.slice(1));
}

describe('splitTopicKey', () => {
  it('splits like RabbitMQ: "" has no words, empty words are kept', () => {
    expect(splitTopicKey('')).toEqual([]);
    expect(splitTopicKey('a')).toEqual(['a']);
    expect(splitTopicKey('a..b')).toEqual(['a', '', 'b']);
    expect(splitTopicKey('.')).toEqual(['', '']);
    expect(splitTopicKey('a.')).toEqual(['a', '']);
    expect(splitTopicKey('.a')).toEqual(['', 'a']);
  });
});

describe('topic table', () => {
  it.each(CASES)('binding %j, routing key %j → %s', (bindingKey, routingKey, expected) => {
    const t = createRoutingTable<TestDest>('topic');
    t.bind(dest('q'), bindingKey, NO_ARGS);
    expect(routeNames(t, routingKey)).toEqual(expected ? ['q'] : []);
    // the reference matcher agrees with the table
    expect(referenceMatch(splitTopicKey(bindingKey), splitTopicKey(routingKey))).toBe(expected);
  });

  it('routes all cases at once through one shared trie', () => {
    const t = createRoutingTable<TestDest>('topic');
    const byBinding = new Map<string, TestDest>();
    for (const [bindingKey] of CASES) {
      if (!byBinding.has(bindingKey)) {
        const q = dest(`[${bindingKey}]`);
        byBinding.set(bindingKey, q);
        t.bind(q, bindingKey, NO_ARGS);
      }
    }
    const routingKeys = new Set(CASES.map((c) => c[1]));
    for (const routingKey of routingKeys) {
      const expected = [...byBinding.keys()]
        .filter((b) => referenceMatch(splitTopicKey(b), splitTopicKey(routingKey)))
        .map((b) => `[${b}]`)
        .sort();
      expect(routeNames(t, routingKey), routingKey).toEqual(expected);
    }
  });

  it('agrees with the reference matcher on generated keys', () => {
    // deterministic LCG so failures reproduce
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const patternWords = ['a', 'b', '', '*', '#'];
    const keyWords = ['a', 'b', '', 'c'];
    const makeKey = (alphabet: string[]): string =>
      Array.from({ length: rand(6) }, () => alphabet[rand(alphabet.length)]!).join('.');
    const t = createRoutingTable<TestDest>('topic');
    const patterns = new Map<string, TestDest>();
    for (let i = 0; i < 300; i++) {
      const p = makeKey(patternWords);
      if (!patterns.has(p)) {
        patterns.set(p, dest(p));
        t.bind(patterns.get(p)!, p, NO_ARGS);
      }
    }
    for (let i = 0; i < 300; i++) {
      const key = makeKey(keyWords);
      const expected = [...patterns.keys()].filter((p) => referenceMatch(splitTopicKey(p), splitTopicKey(key))).sort();
      expect(routeNames(t, key), key).toEqual(expected);
    }
    // unbind half, routing still agrees
    let n = 0;
    for (const [p, q] of patterns) {
      if (n++ % 2 === 0) {
        expect(t.unbind(q, p, NO_ARGS)).toBe(true);
        patterns.delete(p);
      }
    }
    for (let i = 0; i < 100; i++) {
      const key = makeKey(keyWords);
      const expected = [...patterns.keys()].filter((p) => referenceMatch(splitTopicKey(p), splitTopicKey(key))).sort();
      expect(routeNames(t, key), key).toEqual(expected);
    }
  });

  it('a destination matched by several bindings appears once', () => {
    const t = createRoutingTable<TestDest>('topic');
    const q = dest('q');
    t.bind(q, 'a.*', NO_ARGS);
    t.bind(q, '#', NO_ARGS);
    t.bind(q, 'a.b', NO_ARGS);
    t.bind(q, 'a.b', table({ x: int(1) }));
    const out = new Set<TestDest>();
    t.route('a.b', undefined, out);
    expect([...out]).toEqual([q]);
  });

  it('unbind of one of two bindings differing only by args keeps the other', () => {
    const t = createRoutingTable<TestDest>('topic');
    const q = dest('q');
    t.bind(q, 'a.#', NO_ARGS);
    t.bind(q, 'a.#', table({ x: int(1) }));
    expect(t.unbind(q, 'a.#', table({ x: int(1) }))).toBe(true);
    expect(routeNames(t, 'a.b')).toEqual(['q']);
    expect(t.unbind(q, 'a.#', NO_ARGS)).toBe(true);
    expect(routeNames(t, 'a.b')).toEqual([]);
  });

  it('unbinding a prefix binding keeps longer ones below it, and vice versa', () => {
    const t = createRoutingTable<TestDest>('topic');
    const [q1, q2] = [dest('q1'), dest('q2')];
    t.bind(q1, 'a', NO_ARGS);
    t.bind(q2, 'a.b', NO_ARGS);
    t.unbind(q1, 'a', NO_ARGS);
    expect(routeNames(t, 'a')).toEqual([]);
    expect(routeNames(t, 'a.b')).toEqual(['q2']);
    t.bind(q1, 'a', NO_ARGS);
    t.unbind(q2, 'a.b', NO_ARGS);
    expect(routeNames(t, 'a')).toEqual(['q1']);
    expect(routeNames(t, 'a.b')).toEqual([]);
  });

  it('removeDestination removes every binding of it', () => {
    const t = createRoutingTable<TestDest>('topic');
    const [q1, q2] = [dest('q1'), dest('q2')];
    t.bind(q1, '#', NO_ARGS);
    t.bind(q1, 'a.*', NO_ARGS);
    t.bind(q2, 'a.*', NO_ARGS);
    expect(t.removeDestination(q1)).toBe(2);
    expect(t.bindingCount()).toBe(1);
    expect(routeNames(t, 'a.b')).toEqual(['q2']);
    expect(routeNames(t, 'z')).toEqual([]);
  });

  it('does not blow up on many `#` against a long key', () => {
    const t = createRoutingTable<TestDest>('topic');
    const q = dest('q');
    const hashes = Array.from({ length: 20 }, () => '#').join('.');
    t.bind(q, hashes, NO_ARGS);
    t.bind(dest('miss'), `${hashes}.z.${hashes}.z.${hashes}.y`, NO_ARGS);
    t.bind(dest('hit'), `${hashes}.z.${hashes}.z.${hashes}`, NO_ARGS);
    const key = Array.from({ length: 120 }, (_, i) => (i % 10 === 0 ? 'z' : 'w')).join('.');
    expect(routeNames(t, key)).toEqual(['hit', 'q']);
  });

  it('stays correct with 10k bindings', () => {
    const t = createRoutingTable<TestDest>('topic');
    const qs: TestDest[] = [];
    for (let i = 0; i < 10_000; i++) {
      const q = dest(`q${i}`);
      qs.push(q);
      // a mix of literal, `*` and `#` bindings sharing prefixes
      const key = i % 3 === 0 ? `stock.${i % 100}.${i}` : i % 3 === 1 ? `stock.*.${i}` : `#.${i}`;
      expect(t.bind(q, key, NO_ARGS)).toBe(true);
    }
    const shared = dest('shared');
    t.bind(shared, 'stock.#', NO_ARGS);
    expect(t.bindingCount()).toBe(10_001);
    for (let i = 0; i < 10_000; i += 7) {
      // `stock.<i%100>.<i>` is matched by exactly the binding made for i (whatever its form) + stock.#
      expect(routeNames(t, `stock.${i % 100}.${i}`)).toEqual([`q${i}`, 'shared'].sort());
    }
    expect(routeNames(t, 'stock.x.none')).toEqual(['shared']);
    expect(routeNames(t, 'other')).toEqual([]);
    for (const q of qs) t.removeDestination(q);
    expect(t.bindingCount()).toBe(1);
    expect(routeNames(t, 'stock.1.1')).toEqual(['shared']);
  });
});
