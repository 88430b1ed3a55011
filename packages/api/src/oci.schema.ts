import { type Static, Type } from 'typebox';

/** What a container image's config says to run (OCI image config `config`), recorded when it is pulled. */
export const OciRunConfig = Type.Object(
  {
    entrypoint: Type.Array(Type.String()),
    cmd: Type.Array(Type.String()),
    env: Type.Array(Type.String({ description: 'NAME=value' })),
    working_dir: Type.String(),
    user: Type.String({ description: 'user[:group], by name or number; empty: root' }),
  },
  { additionalProperties: false },
);
export type OciRunConfig = Static<typeof OciRunConfig>;

/** An image pulled from an OCI registry: the reference asked for, the manifest pulled and its run config. */
export const OciImageSource = Type.Object(
  {
    type: Type.Literal('oci'),
    reference: Type.String(),
    digest: Type.String({
      description: 'Digest of the image manifest that was pulled (the one for the host architecture)',
    }),
    config: OciRunConfig,
  },
  { additionalProperties: false },
);
export type OciImageSource = Static<typeof OciImageSource>;

/** The fields of `source` for `type: oci` (see CreateImageSource); the password is used for the pull only, never stored. */
export const OciSourceFields = {
  reference: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 512,
      pattern: '^[a-zA-Z0-9][a-zA-Z0-9._:/@+-]*$',
      description: 'type oci: [registry[:port]/]repository[:tag][@sha256:digest]; Docker Hub when no registry is named',
    }),
  ),
  username: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'type oci: registry user' })),
  password: Type.Optional(
    Type.String({ minLength: 1, maxLength: 4096, description: 'type oci: registry password or token; never stored' }),
  ),
};

/**
 * The service a VM of an OCI image runs (agent spec): nqvm's init starts the guest agent, which runs `argv` with
 * `env` in `working_dir` as `user`, its output on the console, restarted per `restart` (the VM's restart policy).
 * `vm_env` is the VM's own environment (`KEY=value`), applied after the image's `env` so that it overrides it.
 */
export const AgentService = Type.Object(
  {
    argv: Type.Array(Type.String(), { minItems: 1 }),
    env: Type.Array(Type.String()),
    vm_env: Type.Optional(Type.Array(Type.String())),
    working_dir: Type.String(),
    user: Type.String(),
    restart: Type.Union([Type.Literal('never'), Type.Literal('on-failure'), Type.Literal('always')]),
  },
  { additionalProperties: false },
);
export type AgentService = Static<typeof AgentService>;
