/** What a problem `code` means, and the one HTTP status it is always sent with. */
export interface ErrorCodeInfo {
  status: number;
  meaning: string;
}

const BOOT_STEPS = ['images', 'disk', 'rootfs', 'guest_tools', 'network', 'launch'] as const;

/** A boot that failed at a step: `_failed` (500, the host's fault) or `_refused` (422, the spec cannot boot). */
function bootCodes(): Record<string, ErrorCodeInfo> {
  const out: Record<string, ErrorCodeInfo> = {};
  for (const step of BOOT_STEPS) {
    out[`boot_${step}_failed`] = { status: 500, meaning: `the agent failed to boot the VM at its ${step} step` };
    out[`boot_${step}_refused`] = { status: 422, meaning: `the VM's spec cannot be booted (${step} step)` };
  }
  out.boot_images_unavailable = { status: 502, meaning: "the agent could not fetch the VM's images from the manager" };
  return out;
}

/**
 * Every problem+json `code` the manager and the agents send, each with its one status. A code means one thing
 * everywhere; a unit test reads the sources of both and fails on a code missing here or sent with another status.
 */
export const ERROR_CODES: Readonly<Record<string, ErrorCodeInfo>> = {
  // Requests in general
  validation_failed: { status: 400, meaning: 'the request does not match the schema; `field` and `errors` say where' },
  invalid_json: { status: 400, meaning: 'the body is not valid JSON' },
  bad_request: { status: 400, meaning: 'the request is malformed' },
  body_too_large: { status: 413, meaning: 'the body is larger than the route accepts' },
  unsupported_media_type: { status: 415, meaning: 'the body has a content type the route does not accept' },
  method_not_allowed: { status: 405, meaning: 'the route does not answer this method' },
  not_acceptable: { status: 406, meaning: 'the route cannot answer in an accepted content type' },
  request_timeout: { status: 408, meaning: 'the request took too long to arrive' },
  headers_too_large: { status: 431, meaning: 'the request headers are too large' },
  route_not_found: { status: 404, meaning: 'no route has this method and path' },
  invalid_characters: {
    status: 400,
    meaning: 'a parameter, query or body string holds NUL, another control character or a lone surrogate',
  },
  invalid_url_encoding: { status: 400, meaning: 'the path is not valid percent-encoded UTF-8' },
  uri_too_long: { status: 414, meaning: 'a path parameter is longer than the router accepts' },
  upgrade_required: { status: 426, meaning: 'the route is a WebSocket: connect with an Upgrade request' },
  unauthorized: { status: 401, meaning: 'credentials are missing, wrong or expired' },
  client_certificate_required: {
    status: 403,
    meaning: "the agent's API answers only the manager's client certificate (issued by the manager's CA)",
  },
  invalid_join_token: { status: 401, meaning: 'the host join token is unknown or was revoked' },
  join_token_used: { status: 401, meaning: 'the host join token joined a host already; each joins one host once' },
  join_token_expired: { status: 401, meaning: 'the host join token expired; an admin makes a new one' },
  forbidden: { status: 403, meaning: 'the caller may not do this' },
  wrong_password: { status: 403, meaning: 'the current password given to change it is wrong' },
  function_queue_full: {
    status: 429,
    meaning: 'the function runs its concurrency limit and its queue is full; retry after `retry_after_s`',
  },
  too_many_requests: { status: 429, meaning: 'rate limited; retry after `retry_after_s`' },
  invalid_cursor: { status: 400, meaning: 'the page cursor is not one this list gave out' },
  invalid_range: { status: 400, meaning: 'the time range is empty or reversed' },
  password_unchanged: { status: 400, meaning: 'the new password is the current one' },
  token_ttl_too_long: { status: 400, meaning: "the token would outlive the manager's cap (NQVM_TOKEN_MAX_TTL)" },
  internal: { status: 500, meaning: 'a bug: the server failed; its log has the details under `request_id`' },
  database_unavailable: { status: 503, meaning: 'the database does not answer' },

  // Resources by id (URL): 404
  vm_not_found: { status: 404, meaning: 'no such VM (or not visible to the caller)' },
  project_not_found: { status: 404, meaning: 'no such project (or not visible to the caller)' },
  member_not_found: { status: 404, meaning: 'the user is not a member of the project' },
  image_not_found: { status: 404, meaning: 'no such image' },
  host_not_found: { status: 404, meaning: 'no such host' },
  join_token_not_found: { status: 404, meaning: 'no such host join token' },
  template_not_found: { status: 404, meaning: 'no such template' },
  snapshot_not_found: { status: 404, meaning: 'no such snapshot' },
  agent_starting: { status: 503, meaning: 'the agent is starting (adopting its running VMs); ask again shortly' },
  boot_interrupted: { status: 503, meaning: 'a boot cut short by an agent restart was undone; ask again' },
  operation_not_found: { status: 404, meaning: 'no such operation' },
  webhook_not_found: { status: 404, meaning: 'no such webhook' },
  alert_rule_not_found: { status: 404, meaning: 'no such alert rule' },
  token_not_found: { status: 404, meaning: 'no such API token' },
  user_not_found: { status: 404, meaning: 'no such user' },
  drive_not_found: { status: 404, meaning: 'the VM has no such drive' },
  nic_not_found: { status: 404, meaning: 'the VM has no such NIC' },
  device_not_set: { status: 404, meaning: 'the VM has no such device configured' },
  function_not_found: { status: 404, meaning: 'no such function (or its HTTP trigger is off)' },
  invocation_not_found: { status: 404, meaning: 'no such invocation' },
  log_not_found: { status: 404, meaning: 'the VM has no such log (it never ran on a host)' },

  // References in a request body: 422 with `field`
  unknown_image: { status: 422, meaning: 'the body names an image that does not exist' },
  image_ref_conflict: { status: 400, meaning: 'an image is given both by id and by name (`…_image_id` and `…_image`)' },
  image_required: { status: 400, meaning: 'a VM needs a kernel and a rootfs image, by id or by name' },
  unknown_host: { status: 422, meaning: 'the body names a host that does not exist' },
  network_not_found: { status: 422, meaning: 'the body names a network that does not exist' },
  image_not_ready: { status: 422, meaning: 'the body names an image that is still importing or failed' },
  image_format_invalid: {
    status: 422,
    meaning: 'the image is a damaged disk file, has a backing file or refers to other files (qcow2, VMDK, VHDX)',
  },
  image_wrong_kind: { status: 422, meaning: 'the body names an image of another kind (kernel, initrd, rootfs)' },
  wrong_image_kind: { status: 422, meaning: 'the drive image is not a rootfs image' },
  mmds_interface_unknown: { status: 422, meaning: 'MMDS config names an interface the VM does not have' },

  // Values the request carries that cannot work: 422 (or 400 for malformed ones)
  vmm_unavailable: { status: 422, meaning: 'no host (or not this host) can run the requested VMM' },
  alert_rule_invalid: { status: 422, meaning: 'the alert rule lacks a field its kind needs, or has one it cannot use' },
  username_required: { status: 422, meaning: 'a password or SSH key needs a username' },
  smt_odd_vcpu: { status: 422, meaning: 'SMT needs an even vCPU count' },
  balloon_too_large: { status: 422, meaning: 'the balloon must stay below the VM memory' },
  invalid_balloon: { status: 422, meaning: 'the balloon size exceeds the VM memory' },
  blank_needs_volume: { status: 422, meaning: 'a blank image needs a volume size' },
  drive_source: { status: 422, meaning: 'a drive needs exactly one of size_mib and image_id' },
  reserved_drive_id: { status: 422, meaning: 'the drive id is reserved (rootfs, guest tools)' },
  reserved_name: { status: 422, meaning: 'the name is reserved' },
  primary_nic: { status: 422, meaning: "the VM's first NIC cannot be removed" },
  parent_not_allowed: { status: 422, meaning: 'only a Diff snapshot has a parent' },
  snapshot_parent_invalid: { status: 422, meaning: 'the parent is not a snapshot of this VM' },
  snapshot_parent_required: { status: 422, meaning: 'a Diff snapshot needs an earlier snapshot of the VM' },
  function_code_invalid: {
    status: 422,
    meaning: 'the code needs exactly one of `code` and `files`, within the size limit, holding the handler file',
  },
  template_field_unsupported: { status: 422, meaning: 'the template does not allow overriding this field' },
  log_unavailable: { status: 422, meaning: 'this log is not kept as a file (it goes to standard output)' },
  unsupported_on_host: { status: 422, meaning: "the VM's VMM or host cannot do this" },
  clone_mismatch: { status: 422, meaning: 'the clone spec does not fit its source VM' },
  snapshot_mismatch: { status: 422, meaning: 'the instance spec does not fit the snapshot' },
  snapshot_without_agent: { status: 422, meaning: 'instances of a snapshot need its guest agent' },
  invalid_url: { status: 400, meaning: 'the URL is malformed or not allowed' },
  url_not_allowed: {
    status: 400,
    meaning: 'the URL (or a redirect) leads to an internal address; NQVM_IMPORT_ALLOW_CIDRS can allow a range',
  },
  invalid_source: { status: 400, meaning: 'the image source is malformed' },
  invalid_drive: { status: 400, meaning: 'the template drive is malformed' },
  invalid_public_key: { status: 400, meaning: "the agent's public key is not an EC P-256 or Ed25519 key in SPKI PEM" },
  invalid_agent_url: { status: 400, meaning: "the agent's advertised URL is not an http(s) URL" },
  image_path_refused: { status: 400, meaning: 'the image path is outside the allowed root' },
  image_path_not_found: { status: 400, meaning: 'no file at the image path' },
  image_paths_disabled: { status: 403, meaning: 'importing images by path is turned off' },
  upload_incomplete: { status: 400, meaning: 'the upload ended before its declared length' },
  vm_id_required: { status: 400, meaning: 'this log source needs vm_id' },
  image_too_large: { status: 413, meaning: 'the image is larger than the configured limit' },
  mmds_too_large: { status: 413, meaning: 'the MMDS data is larger than 51,200 bytes of JSON' },
  range_not_satisfiable: { status: 416, meaning: 'the byte range lies outside the image' },
  wait_timeout: { status: 408, meaning: 'the VM did not reach the state before the timeout' },

  // The resource's state or other resources stand in the way: 409
  user_exists: { status: 409, meaning: 'a user with this username exists' },
  last_admin: {
    status: 409,
    meaning: 'the last active admin cannot be disabled, demoted or deleted: make another admin first',
  },
  invalid_transition: { status: 409, meaning: "the VM's state does not allow this action" },
  quota_exceeded: {
    status: 409,
    meaning: "past the project's quota; `resource`, `limit`, `used` and `requested` say which and by how much",
  },
  no_capacity: { status: 409, meaning: 'no host has room for the VM; `hosts` says why per host' },
  vm_name_taken: { status: 409, meaning: 'a VM with this name exists' },
  image_name_taken: { status: 409, meaning: 'an image with this name and tag exists' },
  function_name_taken: { status: 409, meaning: 'a function with this name exists' },
  template_name_taken: { status: 409, meaning: 'a template with this name exists' },
  project_name_taken: { status: 409, meaning: 'a project with this name exists' },
  project_not_empty: {
    status: 409,
    meaning: 'the project still holds VMs, images, templates or snapshots (counted by kind)',
  },
  image_in_use: { status: 409, meaning: 'VMs or templates still use the image version; `used_by` names them' },
  image_kind_differs: { status: 409, meaning: 'the name has versions of another kind; all versions share one kind' },
  image_importing: { status: 409, meaning: "the image's content is not there yet (still importing)" },
  image_content_unavailable: {
    status: 503,
    meaning: "this manager does not hold the image's bytes (several managers need shared image storage)",
  },
  host_in_use: { status: 409, meaning: 'VMs still live on the host' },
  host_exists: { status: 409, meaning: 'a host of this name is registered; registering it again needs its secret' },
  has_dependents: { status: 409, meaning: 'something builds on it (a Diff snapshot on its parent)' },
  requires_stop: { status: 409, meaning: 'the change needs the VM stopped' },
  vm_busy: { status: 409, meaning: 'the VM is in a transitional state' },
  vm_not_placed: { status: 409, meaning: 'the VM is on no host' },
  vm_not_running: { status: 409, meaning: 'the VM is not running' },
  vm_not_stopped: { status: 409, meaning: 'the VM is not stopped' },
  guest_not_ready: { status: 409, meaning: 'the guest agent has not reported ready since this boot' },
  balloon_not_configured: { status: 409, meaning: 'the VM has no balloon device' },
  drive_exists: { status: 409, meaning: 'the VM has a drive with this id' },
  too_many_drives: { status: 409, meaning: 'the VM has the most drives it may have' },
  too_many_nics: { status: 409, meaning: 'the VM has the most NICs it may have' },
  mac_taken: { status: 409, meaning: 'another NIC on the network has this MAC' },
  network_full: { status: 409, meaning: 'the network has no free address' },
  operation_failed: { status: 502, meaning: 'the operation that did the work failed; the message is its reason' },
  snapshot_in_use: { status: 409, meaning: 'an instance is being restored from the snapshot' },
  snapshot_not_ready: { status: 409, meaning: 'the snapshot is not ready' },

  // OCI image pulls
  invalid_reference: { status: 400, meaning: 'the OCI image reference is malformed' },
  registry_auth_failed: { status: 400, meaning: 'the registry refused the credentials (or asked for some)' },
  oci_manifest_unknown: { status: 422, meaning: 'the registry has no such image (repository, tag or digest)' },
  oci_unsupported: { status: 422, meaning: 'the OCI image has a form nqvm cannot unpack' },
  oci_platform_unavailable: {
    status: 400,
    meaning: "the OCI image has no linux image for the host's architecture; the message names those it has",
  },
  oci_needs_rootfs: { status: 422, meaning: 'an OCI image becomes a rootfs image' },
  registry_unavailable: { status: 502, meaning: 'the registry could not be reached or answered with an error' },

  // Hosts and guests
  host_error: { status: 502, meaning: "a host agent failed or did not answer; `detail` has the agent's reason" },
  guest_identity_refused: { status: 502, meaning: 'the restored guest agent refused its new identity' },
  guest_identity_timeout: { status: 504, meaning: 'the restored guest agent did not take its new identity in time' },
  guest_address_mismatch: {
    status: 403,
    meaning: 'a guest report came from, or named, an address not allocated to its VM',
  },
  guest_agent_unavailable: {
    status: 502,
    meaning: "the VM's guest agent did not answer a call relayed by its host agent (not booted, no agent, unreachable)",
  },
  // The in-guest function runner (runtime VMs), relayed by the host agent
  function_load_failed: {
    status: 422,
    meaning:
      "the function's handler could not be loaded (missing file or export, an error at import); `error` says why",
  },
  function_not_loaded: { status: 409, meaning: 'no function is loaded in this VM (or its one invocation already ran)' },
  runner_busy: { status: 409, meaning: "the runtime VM's function is already loading or running an invocation" },
  runner_too_large: { status: 413, meaning: "the function's files or the event exceed their size limit" },
  function_failed: { status: 502, meaning: 'the HTTP-triggered invocation failed; `invocation_id` names it' },
  function_timed_out: {
    status: 504,
    meaning: 'the HTTP-triggered invocation ran out of time; `invocation_id` names it',
  },
  relay_failed: { status: 502, meaning: "the host agent could not relay the guest's report to the manager" },
  snapshot_chain_loop: { status: 500, meaning: "a bug: a snapshot's parent chain loops" },

  // Agent-only (manager → agent API)
  invalid_vm_id: { status: 400, meaning: 'the VM id is not a UUID' },
  invalid_snapshot_id: { status: 400, meaning: 'the snapshot id is not a UUID' },
  id_mismatch: { status: 400, meaning: 'the path id and the body vm_id differ' },
  ...bootCodes(),
};

export function isErrorCode(code: string): boolean {
  return Object.hasOwn(ERROR_CODES, code);
}

/** The status a catalogued code is always sent with. */
export function statusOfCode(code: string): number | undefined {
  return isErrorCode(code) ? ERROR_CODES[code]?.status : undefined;
}

/** The generic code of a status, for errors that carry only a status (the HTTP framework's own). */
export function codeForStatus(status: number): string {
  const generic: Record<number, string> = {
    400: 'bad_request',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'route_not_found',
    405: 'method_not_allowed',
    406: 'not_acceptable',
    408: 'request_timeout',
    413: 'body_too_large',
    415: 'unsupported_media_type',
    429: 'too_many_requests',
    431: 'headers_too_large',
  };
  return generic[status] ?? (status >= 500 ? 'internal' : 'bad_request');
}

/** Standard reason phrases, the problem's `title`. */
export const STATUS_TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  422: 'Unprocessable Entity',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  507: 'Insufficient Storage',
};
