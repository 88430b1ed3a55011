import { type Static, Type } from 'typebox';

/** cloud-init's user-data as given: a `#cloud-config` document or a script (`#!`), read by the guest's cloud-init. */
export const UserData = Type.String({
  minLength: 1,
  maxLength: 65536,
  description:
    'cloud-init user-data (`#cloud-config` or a `#!` script), served on a NoCloud `cidata` seed drive with the network config of the allocated address',
});

/** Extra NoCloud meta-data keys; `instance-id` (the VM id) and `local-hostname` (its name) are set by nqvm. */
export const MetaData = Type.Record(
  Type.String({ minLength: 1, maxLength: 128, pattern: '^[a-zA-Z0-9_.-]+$' }),
  // Strings only: with the API's type coercion a union of scalars would turn 4 into "4" or back.
  Type.String({ maxLength: 4096 }),
  {
    additionalProperties: false,
    maxProperties: 64,
    description: 'cloud-init meta-data keys added to instance-id and local-hostname',
  },
);
export type MetaData = Static<typeof MetaData>;

/** What the agent writes on a VM's seed drive. */
export const AgentCloudInit = Type.Object(
  { user_data: Type.Optional(Type.String()), meta_data: Type.Optional(MetaData) },
  { additionalProperties: false },
);
export type AgentCloudInit = Static<typeof AgentCloudInit>;
