import { type Static, Type } from 'typebox';

/** Firecracker's token-bucket rate limiter, shared by drives, NICs and the entropy device. */
export const TokenBucket = Type.Object(
  {
    size: Type.Integer({ minimum: 0, maximum: 2 ** 40, description: 'Bucket size (bytes or operations)' }),
    one_time_burst: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 40 })),
    refill_time: Type.Integer({ minimum: 0, maximum: 3_600_000, description: 'ms to refill the whole bucket' }),
  },
  { additionalProperties: false },
);
export const RateLimiter = Type.Object(
  { bandwidth: Type.Optional(TokenBucket), ops: Type.Optional(TokenBucket) },
  { additionalProperties: false },
);
export type RateLimiter = Static<typeof RateLimiter>;

export const Applied = Type.Union([Type.Literal('live'), Type.Literal('next_boot')], {
  description: 'live: in effect on the running VM now; next_boot: stored, applied when the VM next starts',
});

/** The answer to every device change: the resulting setting, when it takes effect, the operation that applied it live. */
export const Changed = <T extends ReturnType<typeof Type.Object>>(item: T) =>
  Type.Object(
    {
      item,
      applied: Applied,
      operation_id: Type.Optional(
        Type.String({ format: 'uuid', description: 'A live change is a `device` operation: /v1/operations/{id}' }),
      ),
    },
    { additionalProperties: false },
  );

/** What every device route shares: its OpenAPI tag and who may call it. */
export const deviceRoute = { tag: 'vm-devices', auth: 'user' as const };
