import { type Static, Type } from 'typebox';

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
