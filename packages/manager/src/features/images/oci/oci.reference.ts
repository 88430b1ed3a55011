import { BadRequest } from '../../../domain/errors.ts';

/** A parsed image reference: where the registry is, which repository, and the tag or digest asked for. */
export interface OciReference {
  /** Base URL of the registry's API, e.g. `https://registry-1.docker.io`. */
  registry: URL;
  repository: string;
  /** The tag or `sha256:…` digest to ask the manifest endpoint for. */
  ref: string;
  /** The reference as the user would write it in full. */
  canonical: string;
}

const FIELD = 'body.source.reference';
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$/;

/** Loopback registries (a developer's or a test's) speak plain HTTP; every other one HTTPS. */
function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === '[::1]';
}

/**
 * `[registry[:port]/]repository[:tag][@sha256:digest]`, normalised as Docker does: no registry means Docker Hub
 * (`library/` for one-component names), no tag and no digest means `latest`; a digest wins over a tag.
 */
export function parseReference(raw: string): OciReference {
  const bad = (why: string) => new BadRequest('invalid_reference', `${raw} is not an image reference: ${why}`, FIELD);
  let rest = raw;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('the digest must be sha256: and 64 hex digits');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad('the tag is malformed');
  }
  const parts = rest.split('/');
  let host = 'docker.io';
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    host = first;
    parts.shift();
    if (!HOST.test(host)) throw bad('the registry host is malformed');
  }
  if (host === 'docker.io' && parts.length === 1) parts.unshift('library');
  if (parts.length === 0 || !parts.every((p) => COMPONENT.test(p)))
    throw bad('the repository must be lower-case components separated by /');
  const repository = parts.join('/');
  if (repository.length > 255) throw bad('the repository name is too long');
  const apiHost = host === 'docker.io' ? 'registry-1.docker.io' : host;
  const hostname = apiHost.replace(/:\d+$/, '');
  const registry = new URL(`${isLoopback(hostname) ? 'http' : 'https'}://${apiHost}`);
  const ref = digest ?? tag ?? 'latest';
  const canonical = `${host}/${repository}${tag !== undefined || !digest ? `:${tag ?? 'latest'}` : ''}${digest ? `@${digest}` : ''}`;
  return { registry, repository, ref, canonical };
}
