import { describe, expect, it } from 'vitest';
import { parseReference } from './oci.reference.ts';

describe('parseReference', () => {
  it('normalises Docker Hub names as Docker does', () => {
    const r = parseReference('alpine');
    expect(r).toMatchObject({
      repository: 'library/alpine',
      ref: 'latest',
      canonical: 'docker.io/library/alpine:latest',
    });
    expect(r.registry.href).toBe('https://registry-1.docker.io/');
    expect(parseReference('team/app:1.2').repository).toBe('team/app');
  });

  it('takes a registry with a port, a tag and a digest (the digest wins)', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    const r = parseReference(`registry.example.com:5000/team/app:1.2@${d}`);
    expect(r).toMatchObject({ repository: 'team/app', ref: d });
    expect(r.registry.href).toBe('https://registry.example.com:5000/');
  });

  it('speaks plain HTTP to loopback registries only', () => {
    expect(parseReference('127.0.0.1:5000/app').registry.protocol).toBe('http:');
    expect(parseReference('localhost:5000/app').registry.protocol).toBe('http:');
    expect(parseReference('10.0.0.1:5000/app').registry.protocol).toBe('https:');
  });

  it.each(['UPPER/case', 'app@sha256:abc', 'app:bad/tag', 'reg.io/', 'a//b', '../etc'])('refuses %s', (raw) => {
    expect(() => parseReference(raw)).toThrow(expect.objectContaining({ code: 'invalid_reference', status: 400 }));
  });
});
