import { describe, expect, it } from 'vitest';
import { imageNameOf } from './pull.ts';

describe('images pull', () => {
  it('names the image after the repository and tag', () => {
    expect(imageNameOf('registry.example.com:5000/team/app:1.2')).toBe('app-1.2');
    expect(imageNameOf('alpine')).toBe('alpine-latest');
    expect(imageNameOf(`127.0.0.1:5000/web@sha256:${'a'.repeat(64)}`)).toBe('web-latest');
  });
});
