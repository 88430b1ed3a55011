import type { TSchema } from 'typebox';
import Value from 'typebox/value';

/** Plain words for the patterns the API's schemas use, so a form says what is allowed. */
const PATTERN_WORDS: Record<string, string> = {
  '^[a-zA-Z0-9][a-zA-Z0-9._-]*$': 'letters, digits, dot, underscore and dash, starting with a letter or digit',
  '^[a-zA-Z0-9._:/=-]+$': 'letters, digits and . _ : / = - (no spaces)',
  '^[a-z_][a-z0-9_-]*$': 'lower-case letters, digits, _ and -, starting with a letter or _',
};

/**
 * The same check the API makes, in the browser before a submit: the request body against the route's TypeBox
 * schema, errors keyed like `fieldErrors` of a problem answer (`name`, `tags.0`).
 */
export function schemaErrors(schema: TSchema, value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of Value.Errors(schema, value)) {
    const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const pattern = (e.params as { pattern?: string }).pattern;
    out[field] ??= pattern && PATTERN_WORDS[pattern] ? `use ${PATTERN_WORDS[pattern]}` : e.message;
  }
  return out;
}
