import { api, IMAGE_KINDS, type Image, type ImageKind } from '@nqvm/api';
import { useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useRef, useState } from 'react';
import { Modal } from '../components/dialog.tsx';
import { Button, ErrorState, Field, ProgressBar } from '../components/ui.tsx';
import { call, fieldErrors, uploadImage } from '../lib/api.ts';
import { formatBytes } from '../lib/format.ts';
import { useImageProgress } from '../lib/images.ts';

type SourceType = 'url' | 'path' | 'blank';

export function ImportDialog({
  open,
  onClose,
  mode,
}: {
  open: boolean;
  onClose: () => void;
  mode: 'import' | 'blank';
}) {
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const [kind, setKind] = useState<ImageKind>(mode === 'blank' ? 'volume' : 'rootfs');
  const [description, setDescription] = useState('');
  const [type, setType] = useState<SourceType>('url');
  const [location, setLocation] = useState('');
  const [sha256, setSha256] = useState('');
  const [sizeMib, setSizeMib] = useState('1024');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [started, setStarted] = useState<Image | null>(null);
  const source = mode === 'blank' ? 'blank' : type;
  const errs = fieldErrors(error);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const img = await call(api.images.create, {
        body: {
          name,
          kind: mode === 'blank' ? 'volume' : kind,
          ...(description ? { description } : {}),
          source:
            source === 'blank'
              ? { type: 'blank', size_mib: Number(sizeMib) }
              : source === 'url'
                ? { type: 'url', url: location, ...(sha256 ? { sha256 } : {}) }
                : { type: 'path', path: location },
        },
      });
      await qc.invalidateQueries({ queryKey: ['images'] });
      setStarted(img);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const close = () => {
    setStarted(null);
    setError(null);
    setName('');
    setLocation('');
    onClose();
  };
  const fieldErr = (k: string) => errs[k] ?? errs[`source.${k}`];

  return (
    <Modal
      open={open}
      onOpenChange={(o) => (o ? undefined : close())}
      title={mode === 'blank' ? 'Create a blank volume' : 'Import an image'}
    >
      {started ? (
        <div className="flex flex-col gap-3">
          <ImportProgress image={started} />
          <div className="flex justify-end">
            <Button onClick={close}>Close</Button>
          </div>
        </div>
      ) : (
        <form onSubmit={submit} className="flex flex-col gap-3" noValidate>
          <Field label="Name" error={errs.name}>
            {(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />}
          </Field>
          {mode === 'import' ? (
            <>
              <Field label="Kind" error={errs.kind}>
                {(p) => (
                  <select {...p} value={kind} onChange={(e) => setKind(e.target.value as ImageKind)}>
                    {IMAGE_KINDS.map((k) => (
                      <option key={k} value={k}>
                        {k}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <fieldset className="flex gap-4 text-sm">
                <legend className="mb-1 text-sm font-medium text-slate-700">Source</legend>
                {(['url', 'path'] as const).map((t) => (
                  <label key={t} className="flex items-center gap-1.5">
                    <input type="radio" name="source" checked={type === t} onChange={() => setType(t)} />{' '}
                    {t === 'url' ? 'URL' : 'Path on the manager'}
                  </label>
                ))}
              </fieldset>
              <Field
                label={type === 'url' ? 'URL' : 'Path'}
                error={fieldErr(type)}
                hint={type === 'path' ? 'A file under MANAGER_IMAGE_ROOT' : 'http:// or https://'}
              >
                {(p) => <input {...p} required value={location} onChange={(e) => setLocation(e.target.value)} />}
              </Field>
              {type === 'url' ? (
                <Field label="Expected SHA-256 (optional)" error={fieldErr('sha256')}>
                  {(p) => <input {...p} value={sha256} onChange={(e) => setSha256(e.target.value)} />}
                </Field>
              ) : null}
            </>
          ) : (
            <Field label="Size (MiB)" error={fieldErr('size_mib')}>
              {(p) => (
                <input {...p} type="number" min={8} value={sizeMib} onChange={(e) => setSizeMib(e.target.value)} />
              )}
            </Field>
          )}
          <Field label="Description" error={errs.description}>
            {(p) => <input {...p} value={description} onChange={(e) => setDescription(e.target.value)} />}
          </Field>
          {error && !Object.keys(errs).length ? <ErrorState error={error} what="Image import" /> : null}
          <div className="flex justify-end gap-2">
            <Button onClick={close}>Cancel</Button>
            <Button type="submit" variant="primary" disabled={busy}>
              {mode === 'blank' ? 'Create' : 'Import'}
            </Button>
          </div>
        </form>
      )}
    </Modal>
  );
}

function ImportProgress({ image }: { image: Image }) {
  const live = useImageProgress(image).data ?? image;
  return (
    <div className="flex flex-col gap-2" data-testid="import-progress">
      <p className="text-sm">
        {live.state === 'ready'
          ? `${live.name} is ready (${formatBytes(live.size_bytes)}).`
          : `Importing ${live.name}…`}
      </p>
      <ProgressBar
        label={`Import of ${live.name}`}
        value={live.state === 'ready' ? 1 : live.bytes_done}
        max={live.state === 'ready' ? 1 : live.bytes_total}
      />
      <p className="text-xs text-slate-500">
        {formatBytes(live.bytes_done)}
        {live.bytes_total ? ` of ${formatBytes(live.bytes_total)}` : ''}
      </p>
    </div>
  );
}

export function UploadDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState('');
  const [kind, setKind] = useState<ImageKind>('rootfs');
  const [progress, setProgress] = useState<{ sent: number; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<Image | null>(null);
  const abort = useRef<(() => void) | null>(null);
  const errs = fieldErrors(error);
  const close = () => {
    abort.current?.();
    setProgress(null);
    setError(null);
    setDone(null);
    setFile(null);
    onClose();
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setError(null);
    const up = uploadImage(file, { name, kind }, (sent, total) => setProgress({ sent, total }));
    abort.current = up.abort;
    try {
      setDone(await up.promise);
      await qc.invalidateQueries({ queryKey: ['images'] });
    } catch (err) {
      setError(err);
      setProgress(null);
    } finally {
      abort.current = null;
    }
  };
  return (
    <Modal open={open} onOpenChange={(o) => (o ? undefined : close())} title="Upload an image">
      <form onSubmit={submit} className="flex flex-col gap-3" noValidate>
        <Field label="File">
          {(p) => (
            <input
              {...p}
              type="file"
              required
              onChange={(e) => {
                const f = e.target.files?.[0] ?? null;
                setFile(f);
                if (f && !name)
                  setName(
                    f.name
                      .replace(/[^a-zA-Z0-9._-]/g, '-')
                      .replace(/^[^a-zA-Z0-9]+/, '')
                      .slice(0, 63),
                  );
              }}
            />
          )}
        </Field>
        <Field label="Name" error={errs.name}>
          {(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Kind" error={errs.kind}>
          {(p) => (
            <select {...p} value={kind} onChange={(e) => setKind(e.target.value as ImageKind)}>
              {IMAGE_KINDS.map((k) => (
                <option key={k} value={k}>
                  {k}
                </option>
              ))}
            </select>
          )}
        </Field>
        {progress ? (
          <div className="flex flex-col gap-1">
            <ProgressBar label="Upload" value={progress.sent} max={progress.total} />
            <span className="text-xs text-slate-500">
              {formatBytes(progress.sent)} of {formatBytes(progress.total)}
            </span>
          </div>
        ) : null}
        {done ? (
          <p role="status" className="text-sm text-green-700">
            Uploaded {done.name} ({formatBytes(done.size_bytes)}).
          </p>
        ) : null}
        {error && !Object.keys(errs).length ? <ErrorState error={error} what="Image upload" /> : null}
        <div className="flex justify-end gap-2">
          <Button onClick={close}>{done ? 'Close' : 'Cancel'}</Button>
          {done ? null : (
            <Button type="submit" variant="primary" disabled={!file || Boolean(progress)}>
              Upload
            </Button>
          )}
        </div>
      </form>
    </Modal>
  );
}
