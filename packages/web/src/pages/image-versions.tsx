import { api, type Image } from '@nqvm/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Modal } from '../components/dialog.tsx';
import { Badge, Button, ErrorState, Loading } from '../components/ui.tsx';
import { call, errorMessage } from '../lib/api.ts';
import { formatBytes, formatDate } from '../lib/format.ts';
import { useCan } from '../lib/session.tsx';

/** Every version of an image name, newest first; `latest` can be pointed back at an older one (a rollback). */
export function ImageVersionsDialog({
  image,
  open,
  onOpenChange,
}: {
  image: Image;
  open: boolean;
  onOpenChange: (o: boolean) => void;
}) {
  const qc = useQueryClient();
  const can = useCan();
  const versions = useQuery({
    queryKey: ['images', 'versions', image.name],
    queryFn: () => call(api.images.list, { query: { name: image.name, limit: 500 } }),
    enabled: open,
  });
  const rollback = useMutation({
    mutationFn: (id: string) => call(api.images.rollback, { params: { id } }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['images'] }),
  });
  const items = [...(versions.data?.items ?? [])].sort((a, b) => b.version - a.version);
  return (
    <Modal open={open} onOpenChange={onOpenChange} title={`Versions of ${image.name}`}>
      {versions.isPending ? (
        <Loading />
      ) : versions.error ? (
        <ErrorState error={versions.error} retry={() => versions.refetch()} />
      ) : (
        <ul className="flex flex-col divide-y divide-slate-100 text-sm" aria-label={`Versions of ${image.name}`}>
          {items.map((v) => (
            <li key={v.id} className="flex flex-wrap items-center gap-2 py-2" data-image-version={v.version}>
              <span className="font-medium">v{v.version}</span>
              {v.tag ? <span className="font-mono text-xs">:{v.tag}</span> : null}
              {v.latest ? <Badge value="latest" /> : null}
              {v.state !== 'ready' ? <Badge value={v.state} /> : null}
              <span className="text-xs text-slate-500">
                {formatBytes(v.size_bytes)} · {formatDate(v.created_at)}
              </span>
              {can('image:write') && !v.latest && v.state === 'ready' ? (
                <Button className="ml-auto" disabled={rollback.isPending} onClick={() => rollback.mutate(v.id)}>
                  Make latest
                </Button>
              ) : null}
            </li>
          ))}
        </ul>
      )}
      {rollback.error ? (
        <p role="alert" className="mt-2 text-sm text-red-600">
          {errorMessage(rollback.error)}
        </p>
      ) : null}
      <div className="mt-3 flex justify-end">
        <Button onClick={() => onOpenChange(false)}>Close</Button>
      </div>
    </Modal>
  );
}
