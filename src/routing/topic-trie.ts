import { DestinationSet } from './destination-set.js';
import type { RouteSink } from './route-set.js';

/**
 * One trie node per binding-key prefix. `*` and `#` words get their own edges so a
 * publish tries at most three edges per node (literal word, `*`, `#`), as RabbitMQ's
 * trie does (rabbit_db_topic_exchange:trie_match).
 */
class TopicTrieNode<D> {
  /** literal-word edges; created on first use (most leaves have none) */
  children: Map<string, TopicTrieNode<D>> | null = null;
  star: TopicTrieNode<D> | null = null;
  hash: TopicTrieNode<D> | null = null;
  /** destinations whose binding key ends here */
  dests: DestinationSet<D> | null = null;
  /** route() generation in which this `#` node was last entered, and the smallest word index it was entered at */
  visitEpoch = 0;
  visitFrom = 0;

  constructor(
    readonly parent: TopicTrieNode<D> | null,
    readonly word: string,
  ) {}

  isEmpty(): boolean {
    return (
      (this.dests === null || this.dests.size === 0) &&
      this.star === null &&
      this.hash === null &&
      (this.children === null || this.children.size === 0)
    );
  }
}

/**
 * Split a topic key into words. RabbitMQ: split_topic_key_binary(<<>>) -> [] (the empty
 * key has zero words), otherwise binary:split(Key, <<".">>, [global]), which keeps empty
 * words: "a..b" is [a, "", b], "." is ["", ""], "a." is [a, ""].
 */
export function splitTopicKey(key: string, words: string[] = []): string[] {
  words.length = 0;
  if (key.length === 0) return words;
  let start = 0;
  for (;;) {
    const dot = key.indexOf('.', start);
    if (dot === -1) {
      words.push(key.slice(start));
      return words;
    }
    words.push(key.slice(start, dot));
    start = dot + 1;
  }
}

/**
 * Topic binding keys compiled into a word trie (spec 3.1.3.3: `*` is exactly one word,
 * `#` zero or more words). Matching walks the trie against the routing key's words.
 *
 * Patterns with several `#` (`#.#.#`) can reach the same (node, word index) state along
 * many paths; RabbitMQ memoises seen {Node, Words}. Here each `#` node remembers the
 * smallest word index it was entered at during the current route() call: entering it at
 * index i explores every index i..n (the `#` may absorb any number of words), so a later
 * entry at j >= i adds nothing and one at j < i only needs j..i-1. Every state is then
 * visited at most once per publish, without allocating a visited set.
 */
export class TopicTrie<D> {
  readonly #root = new TopicTrieNode<D>(null, '');
  #epoch = 0;
  /** reused by match(): words of the routing key being routed */
  readonly #words: string[] = [];
  #out: RouteSink<D> | null = null;

  add(bindingKey: string, dest: D): void {
    let node = this.#root;
    for (const word of splitTopicKey(bindingKey)) node = this.#child(node, word);
    (node.dests ??= new DestinationSet<D>()).add(dest);
  }

  /** drops one reference of dest at bindingKey; prunes nodes left empty */
  remove(bindingKey: string, dest: D): void {
    let node: TopicTrieNode<D> | null = this.#root;
    for (const word of splitTopicKey(bindingKey)) {
      node = this.#existingChild(node, word);
      if (node === null) return;
    }
    if (node.dests === null) return;
    node.dests.delete(dest);
    if (node.dests.size === 0) node.dests = null;
    this.#prune(node);
  }

  match(routingKey: string, out: RouteSink<D>): void {
    const words = splitTopicKey(routingKey, this.#words);
    // wrap-around guard: nodes stamped long ago must not look visited
    if (++this.#epoch === Number.MAX_SAFE_INTEGER) this.#epoch = 1;
    this.#out = out;
    try {
      this.#visit(this.#root, 0, words);
    } finally {
      this.#out = null;
      words.length = 0;
    }
  }

  /** at `node`, with words[i..] still to match */
  #visit(node: TopicTrieNode<D>, i: number, words: string[]): void {
    if (i === words.length) {
      node.dests?.addAllTo(this.#out!);
    } else {
      const literal = node.children?.get(words[i]!);
      if (literal !== undefined) this.#visit(literal, i + 1, words);
      if (node.star !== null) this.#visit(node.star, i + 1, words);
    }
    // `#` at the end still matches: it absorbs zero words ("a.#" matches "a", "#" matches "")
    if (node.hash !== null) this.#enterHash(node.hash, i, words);
  }

  /** `hash` is a `#` node reached with words[i..] left: it absorbs 0..n-i of them */
  #enterHash(hash: TopicTrieNode<D>, i: number, words: string[]): void {
    let end = words.length;
    if (hash.visitEpoch === this.#epoch) {
      if (hash.visitFrom <= i) return; // indexes i..n already explored from here
      end = hash.visitFrom - 1;
    } else {
      hash.visitEpoch = this.#epoch;
    }
    hash.visitFrom = i;
    for (let j = i; j <= end; j++) this.#visit(hash, j, words);
  }

  #child(node: TopicTrieNode<D>, word: string): TopicTrieNode<D> {
    if (word === '*') return (node.star ??= new TopicTrieNode<D>(node, word));
    if (word === '#') return (node.hash ??= new TopicTrieNode<D>(node, word));
    const children = (node.children ??= new Map());
    let child = children.get(word);
    if (child === undefined) {
      child = new TopicTrieNode<D>(node, word);
      children.set(word, child);
    }
    return child;
  }

  #existingChild(node: TopicTrieNode<D>, word: string): TopicTrieNode<D> | null {
    if (word === '*') return node.star;
    if (word === '#') return node.hash;
    return node.children?.get(word) ?? null;
  }

  #prune(from: TopicTrieNode<D>): void {
    let node = from;
    while (node.parent !== null && node.isEmpty()) {
      const parent: TopicTrieNode<D> = node.parent;
      if (parent.star === node) parent.star = null;
      else if (parent.hash === node) parent.hash = null;
      else parent.children?.delete(node.word);
      node = parent;
    }
  }
}
