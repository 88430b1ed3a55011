import { api, IMAGE_KINDS, type Image, type ImageKind } from '@nqvm/api';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { ConfirmButton, Modal } from '../components/dialog.tsx';
import { Badge, Button, Card, Empty, ErrorState, Field, Loading, PageHeader, ProgressBar } from '../components/ui.tsx';
import { call, errorMessage, fieldErrors } from '../lib/api.ts';
import { formatBytes, formatDate } from '../lib/format.ts';
import { useImageProgress } from '../lib/images.ts';
import { useCan } from '../lib/session.tsx';
import { ImageVersionsDialog } from './image-versions.tsx';
import { ImportDialog, UploadDialog } from './registry-dialogs.tsx';

export function RegistryPage() {
  const [kind, setKind] = useState<ImageKind | ''>('');
  const [q, setQ] = useState('');
  const [dialog, setDialog] = useState<'import' | 'upload' | 'blank' | null>(null);
  const can = useCan();
  const images = useQuery({
    queryKey: ['images', 'list', kind, q],
    queryFn: () => call(api.images.list, { query: { limit: 500, ...(kind ? { kind } : {}), ...(q ? { q } : {}) } }),
  });
  return (
    <>
      <PageHeader
        title="Registry"
        actions={
          can('image:write') ? (
            <>
              <Button variant="primary" onClick={() => setDialog('import')}>
                Import from path or URL
              </Button>
              <Button onClick={() => setDialog('upload')}>Upload</Button>
              <Button onClick={() => setDialog('blank')}>Blank volume</Button>
            </>
          ) : null
        }
      />
      <Card className="mb-4">
        <div className="flex flex-wrap items-end gap-3">
          <div role="tablist" aria-label="Image kinds" className="flex gap-1">
            {(['', ...IMAGE_KINDS] as const).map((k) => (
              <button
                key={k || 'all'}
                type="button"
                role="tab"
                aria-selected={kind === k}
                onClick={() => setKind(k)}
                className={`rounded-full px-3 py-1 text-sm capitalize ${kind === k ? 'bg-blue-600 text-white' : 'bg-slate-200 text-slate-700'}`}
              >
                {k
                  ? ({ kernel: 'kernels', initrd: 'initrds', rootfs: 'root filesystems', volume: 'volumes' } as const)[
                      k
                    ]
                  : 'all'}
              </button>
            ))}
          </div>
          <div className="w-64">
            <Field label="Search by name">
              {(p) => <input {...p} type="search" value={q} onChange={(e) => setQ(e.target.value)} />}
            </Field>
          </div>
        </div>
      </Card>
      {images.isPending ? (
        <Loading />
      ) : images.error ? (
        <ErrorState error={images.error} what="The image registry" retry={() => images.refetch()} />
      ) : images.data.items.length === 0 ? (
        <Empty>No images{kind ? ` of kind ${kind}` : ''}. Import a kernel and a root filesystem to create VMs.</Empty>
      ) : (
        <Card>
          <div className="overflow-x-auto">
            <table className="w-full text-left text-sm">
              <thead className="text-xs text-slate-500 uppercase">
                <tr>
                  <th className="py-1 pr-3">Name</th>
                  <th className="py-1 pr-3">Kind</th>
                  <th className="py-1 pr-3">State</th>
                  <th className="py-1 pr-3">Size</th>
                  <th className="py-1 pr-3">Source</th>
                  <th className="py-1 pr-3">Created</th>
                  <th className="py-1">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100">
                {images.data.items.map((i) => (
                  <ImageRow key={i.id} image={i} />
                ))}
              </tbody>
            </table>
          </div>
        </Card>
      )}
      <ImportDialog
        mode={dialog === 'blank' ? 'blank' : 'import'}
        open={dialog === 'import' || dialog === 'blank'}
        onClose={() => setDialog(null)}
      />
      <UploadDialog open={dialog === 'upload'} onClose={() => setDialog(null)} />
    </>
  );
}

function ImageRow({ image }: { image: Image }) {
  const qc = useQueryClient();
  const live = useImageProgress(image).data ?? image;
  const [renaming, setRenaming] = useState(false);
  const [showVersions, setShowVersions] = useState(false);
  const [name, setName] = useState(image.name);
  const [renameError, setRenameError] = useState<unknown>(null);
  const can = useCan();
  const source =
    live.source.type === 'url'
      ? live.source.url
      : live.source.type === 'path'
        ? live.source.path
        : live.source.type === 'blank'
          ? `blank ${live.source.size_mib} MiB`
          : 'upload';
  return (
    <tr data-image-name={live.name}>
      <td className="py-1.5 pr-3 font-medium">
        {live.name}
        <span className="ml-1 text-xs font-normal text-slate-500">
          v{live.version}
          {live.tag ? `:${live.tag}` : ''}
        </span>
        {live.description ? <span className="block text-xs font-normal text-slate-500">{live.description}</span> : null}
      </td>
      <td className="py-1.5 pr-3">{live.kind}</td>
      <td className="w-48 py-1.5 pr-3">
        {live.state === 'importing' ? (
          <div className="flex flex-col gap-1">
            <ProgressBar label={`Import of ${live.name}`} value={live.bytes_done} max={live.bytes_total} />
            <span className="text-xs text-slate-500">
              {formatBytes(live.bytes_done)}
              {live.bytes_total ? ` of ${formatBytes(live.bytes_total)}` : ''}
            </span>
          </div>
        ) : (
          <Badge value={live.state} />
        )}
      </td>
      <td className="py-1.5 pr-3">{formatBytes(live.size_bytes)}</td>
      <td className="max-w-56 truncate py-1.5 pr-3 text-xs text-slate-500" title={source}>
        {source}
      </td>
      <td className="py-1.5 pr-3 whitespace-nowrap">{formatDate(live.created_at)}</td>
      <td className="py-1.5">
        <div className="flex justify-end gap-2">
          <Button variant="ghost" onClick={() => setShowVersions(true)}>
            Versions
          </Button>
          {can('image:write') ? (
            <>
              <Button
                variant="ghost"
                onClick={() => {
                  setName(live.name);
                  setRenameError(null);
                  setRenaming(true);
                }}
              >
                Rename
              </Button>
              <ConfirmButton
                label="Delete"
                variant="danger"
                title={`Delete ${live.name}?`}
                description="Refused while a VM or template uses the image; the file goes when no other image shares it."
                onConfirm={async () => {
                  await call(api.images.delete, { params: { id: live.id } });
                  await qc.invalidateQueries({ queryKey: ['images'] });
                }}
              />
            </>
          ) : null}
        </div>
        <ImageVersionsDialog image={live} open={showVersions} onOpenChange={setShowVersions} />
        <Modal open={renaming} onOpenChange={setRenaming} title={`Rename ${live.name}`}>
          <form
            className="flex flex-col gap-3"
            onSubmit={async (e) => {
              e.preventDefault();
              try {
                await call(api.images.update, { params: { id: live.id }, body: { name } });
                await qc.invalidateQueries({ queryKey: ['images'] });
                setRenaming(false);
              } catch (err) {
                setRenameError(err);
              }
            }}
          >
            <Field
              label="New name"
              error={fieldErrors(renameError).name ?? (renameError ? errorMessage(renameError) : undefined)}
            >
              {(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />}
            </Field>
            <div className="flex justify-end gap-2">
              <Button onClick={() => setRenaming(false)}>Cancel</Button>
              <Button type="submit" variant="primary">
                Rename
              </Button>
            </div>
          </form>
        </Modal>
      </td>
    </tr>
  );
}
