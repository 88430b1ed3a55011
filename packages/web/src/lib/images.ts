import { api, type Image } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { call } from './api.ts';

/** While an import runs, poll the image for bytes_done (imports send no event per chunk). */
export function useImageProgress(image: Image) {
  return useQuery({
    queryKey: ['image', image.id],
    queryFn: () => call(api.images.get, { params: { id: image.id } }),
    initialData: image,
    enabled: image.state === 'importing',
    refetchInterval: (q) => (q.state.data?.state === 'importing' ? 500 : false),
  });
}
