import { parse } from 'yaml';

/** A config file that cannot be used; the message names the file and the problem on one line. */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
}

/** Setting name (the flag's name, e.g. `management-port`) → its value as text. */
export type ConfigFileValues = Readonly<Record<string, string>>;

/**
 * Reads Warren's config file: YAML, one key per setting, named like the command-line flag
 * without the dashes in front (`port: 5672`, `data-dir: /var/lib/warren`,
 * `management-port: 0`). Values are scalars; they go through the same checks as flags.
 * An unknown key is an error (a typo must not be silently ignored).
 */
export function readConfigFile(path: string, readFile: (path: string) => string, keys: readonly string[]): ConfigFileValues {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new ConfigFileError(`cannot read config file ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ConfigFileError(`config file ${path} is not valid YAML: ${(err as Error).message.split('\n', 1)[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigFileError(`config file ${path}: expected a mapping of settings`);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (!keys.includes(key)) {
      throw new ConfigFileError(`config file ${path}: unknown setting '${key}' (settings are named like the flags: ${keys.join(', ')})`);
    }
    if (value === null || value === undefined) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new ConfigFileError(`config file ${path}: '${key}' must be a single value`);
    }
    out[key] = String(value);
  }
  return out;
}
