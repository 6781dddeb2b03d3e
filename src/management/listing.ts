import { ApiError, badRequest } from './errors.js';

/**
 * The query parameters every list endpoint of RabbitMQ's API takes: `sort`,
 * `sort_reverse`, `columns`, and pagination (`page`, `page_size`, `name`, `use_regex`),
 * with RabbitMQ's answers to bad values.
 */
export interface ListQuery {
  readonly sort?: string;
  readonly sort_reverse?: string;
  readonly columns?: string;
  readonly page?: string;
  readonly page_size?: string;
  readonly name?: string;
  readonly use_regex?: string;
}

/** JSON schema of ListQuery (every list route validates its query with it). */
export const LIST_QUERY_SCHEMA = {
  type: 'object',
  properties: {
    sort: { type: 'string' },
    sort_reverse: { type: 'string' },
    columns: { type: 'string' },
    page: { type: 'string' },
    page_size: { type: 'string' },
    name: { type: 'string' },
    use_regex: { type: 'string' },
    pagination: { type: 'string' },
    // RabbitMQ's own UI and some tools send these; they only change what RabbitMQ samples
    lengths_age: { type: 'string' },
    lengths_incr: { type: 'string' },
    msg_rates_age: { type: 'string' },
    msg_rates_incr: { type: 'string' },
    data_rates_age: { type: 'string' },
    data_rates_incr: { type: 'string' },
    disable_stats: { type: 'string' },
    enable_queue_totals: { type: 'string' },
  },
} as const;

export const MAX_PAGE_SIZE = 500;
const DEFAULT_PAGE_SIZE = 100;

type Json = Record<string, unknown>;

export interface Page {
  filtered_count: number;
  item_count: number;
  items: unknown[];
  page: number;
  page_count: number;
  page_size: number;
  total_count: number;
}

/** Applies sort, filter, pagination and columns; a plain array unless `page` is given. */
export function list(items: Json[], q: ListQuery, defaultSort: readonly string[] = ['vhost', 'name']): unknown[] | Page {
  let sorted = items;
  const sortKeys = q.sort !== undefined && q.sort !== '' ? [q.sort] : defaultSort;
  sorted = [...items].sort((a, b) => compareBy(a, b, sortKeys));
  if (q.sort_reverse === 'true') sorted.reverse();
  if (q.page === undefined) return select(sorted, q.columns);

  const page = paginationNumber(q.page);
  const pageSize = q.page_size === undefined ? DEFAULT_PAGE_SIZE : paginationNumber(q.page_size);
  if (page < 1 || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    throw new ApiError(
      400,
      'invalid_pagination_parameters',
      `Invalid pagination parameters: page number ${page}, page size ${q.page_size === undefined ? 'undefined' : pageSize}`,
    );
  }
  const filtered = filterByName(sorted, q.name, q.use_regex === 'true');
  const start = (page - 1) * pageSize;
  // RabbitMQ: a page may start just past the end (empty), not further
  if (filtered.length > 0 && start > filtered.length) {
    throw new ApiError(400, 'page_out_of_range', `Page out of range, page: ${page} page size: ${pageSize}, len: ${filtered.length}`);
  }
  const items_ = filtered.slice(start, start + pageSize);
  return {
    filtered_count: filtered.length,
    item_count: items_.length,
    items: select(items_, q.columns),
    page,
    page_count: Math.ceil(filtered.length / pageSize),
    page_size: pageSize,
    total_count: items.length,
  };
}

function paginationNumber(s: string): number {
  if (!/^-?[0-9]+$/.test(s)) throw badRequest('Pagination parameters are invalid');
  return Number(s);
}

/** RabbitMQ matches names case-insensitively, as a substring or as a regular expression. */
function filterByName(items: Json[], name: string | undefined, useRegex: boolean): Json[] {
  if (name === undefined || name === '') return items;
  let test: (s: string) => boolean;
  if (useRegex) {
    let re: RegExp;
    try {
      re = new RegExp(name, 'i');
    } catch {
      throw badRequest('Pagination parameters are invalid');
    }
    test = (s) => re.test(s);
  } else {
    const lower = name.toLowerCase();
    test = (s) => s.toLowerCase().includes(lower);
  }
  return items.filter((i) => typeof i.name === 'string' && test(i.name));
}

/** A dotted path into an item (`message_stats.publish_details.rate`). */
function pick(item: unknown, path: string): unknown {
  let v: unknown = item;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Json)[k];
  }
  return v;
}

function compareBy(a: Json, b: Json, keys: readonly string[]): number {
  for (const k of keys) {
    const x = pick(a, k);
    const y = pick(b, k);
    if (x === y) continue;
    if (x === undefined || x === null) return -1;
    if (y === undefined || y === null) return 1;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    const c = String(x).localeCompare(String(y));
    if (c !== 0) return c;
  }
  return 0;
}

/** `columns=a,b.c`: only those (dotted) fields, nested as in the full item. */
export function select<T>(items: T[], columns: string | undefined): T[] | Json[] {
  if (columns === undefined || columns === '') return items;
  const paths = columns.split(',').map((c) => c.trim()).filter((c) => c !== '');
  return items.map((item) => selectOne(item, paths));
}

export function selectOne(item: unknown, paths: readonly string[]): Json {
  const out: Json = {};
  for (const path of paths) {
    const keys = path.split('.');
    const v = pick(item, path);
    if (v === undefined) continue;
    let o = out;
    for (let i = 0; i < keys.length - 1; i++) o = (o[keys[i]!] ??= {}) as Json;
    o[keys[keys.length - 1]!] = v;
  }
  return out;
}
