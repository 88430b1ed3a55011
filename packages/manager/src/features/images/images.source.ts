import type { CreateImageSource } from '@nqvm/api';
import { BadRequest } from '../../domain/errors.ts';
import type { OciSourceSpec } from './oci/oci.import.ts';

export type Source =
  | { type: 'path'; path: string }
  | { type: 'url'; url: string; sha256?: string }
  | { type: 'blank'; size_mib: number }
  | OciSourceSpec;

const SOURCE_FIELDS: Record<Source['type'], { required: string[]; optional: string[] }> = {
  path: { required: ['path'], optional: [] },
  url: { required: ['url'], optional: ['sha256'] },
  blank: { required: ['size_mib'], optional: [] },
  oci: { required: ['reference'], optional: ['username', 'password'] },
};

/** Each source type takes its own fields and no others. */
export function checkSource(src: CreateImageSource): Source {
  const spec = SOURCE_FIELDS[src.type];
  for (const f of spec.required)
    if (src[f as keyof CreateImageSource] === undefined)
      throw new BadRequest('invalid_source', `a ${src.type} source needs ${f}`, `body.source.${f}`);
  for (const f of Object.keys(src))
    if (f !== 'type' && !spec.required.includes(f) && !spec.optional.includes(f))
      throw new BadRequest('invalid_source', `a ${src.type} source does not take ${f}`, `body.source.${f}`);
  return src as Source;
}
