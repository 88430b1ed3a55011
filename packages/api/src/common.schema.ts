import { type Static, type TSchema, type TSchemaOptions, Type } from 'typebox';

export const Uuid = Type.String({ format: 'uuid', description: 'A UUID' });
export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
export const Timestamp = Type.String({ format: 'date-time' });
export const Name = Type.String({
  minLength: 1,
  maxLength: 63,
  pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]*$',
  description: 'Letters, digits, dot, dash and underscore; starts with a letter or digit',
});
export const Description = Type.String({ maxLength: 1024 });
export const Labels = Type.Record(Type.String({ pattern: '^[a-zA-Z0-9._/-]{1,63}$' }), Type.String({ maxLength: 253 }));
export const Sha256 = Type.String({ pattern: '^[a-f0-9]{64}$' });

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'Stable machine-readable error code' }),
    detail: Type.Optional(Type.String()),
    field: Type.Optional(Type.String({ description: 'The offending field, as a JSON pointer-like path' })),
    request_id: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(Type.Object({ field: Type.String(), message: Type.String() }, { additionalProperties: false })),
    ),
  },
  { $id: 'Problem', additionalProperties: true },
);
export type Problem = Static<typeof Problem>;

export const CursorQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
};

export function Page<T extends ReturnType<typeof Type.Object>>(item: T) {
  return Type.Object(
    { items: Type.Array(item), next_cursor: Type.Union([Type.String(), Type.Null()]) },
    { additionalProperties: false },
  );
}

/** The project a create goes into; absent: the caller's default project (a token's, else its first membership). */
export const ProjectIdField = Type.String({
  format: 'uuid',
  description: "The project it goes into (default: the caller's default project: a token's, else its first)",
});
/** Filters a list by project. */
export const ProjectFilter = Type.String({ format: 'uuid', description: "Only this project's" });

export const Ok = Type.Object({ ok: Type.Literal(true) }, { additionalProperties: false });

/**
 * A value or null, written as one schema with two types instead of a union: the manager's validator coerces types,
 * and in a union it reads null as the first branch's type (0, "") or 0 and "" as null, whichever branch comes first.
 * Takes a scalar schema (its format and bounds kept) or a union of string literals (an enum with null).
 */
export function Nullable<T extends TSchema>(schema: T, options: TSchemaOptions = {}) {
  const plain = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  const literals = Array.isArray(plain.anyOf) ? (plain.anyOf as { const?: unknown }[]).map((a) => a.const) : [];
  if (literals.length > 0 && literals.every((v) => typeof v === 'string'))
    return Type.Unsafe<Static<T> | null>({ type: ['string', 'null'], enum: [...literals, null], ...options });
  if (typeof plain.type !== 'string') throw new Error('Nullable takes a scalar schema or a union of string literals');
  return Type.Unsafe<Static<T> | null>({ ...plain, type: [plain.type, 'null'], ...options });
}
