import { api, PASSWORD_MIN_LENGTH } from '@nqvm/api';
import { type FormEvent, useState } from 'react';
import { call, errorMessage, fieldErrors } from '../lib/api.ts';
import { Modal } from './dialog.tsx';
import { Button, Field } from './ui.tsx';

/** "Change password" in the header: the current password and the new one twice; other sessions end. */
export function PasswordButton() {
  const [open, setOpen] = useState(false);
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const reset = (o: boolean) => {
    setOpen(o);
    setCurrent('');
    setNext('');
    setAgain('');
    setError(null);
    setDone(false);
  };
  const errs = fieldErrors(error);
  const mismatch = again !== '' && again !== next ? 'The two new passwords differ' : undefined;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (mismatch) return;
    setBusy(true);
    setError(null);
    try {
      await call(api.auth.changePassword, { body: { current_password: current, new_password: next } });
      setDone(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <Button variant="ghost" onClick={() => reset(true)}>
        Change password
      </Button>
      <Modal
        open={open}
        onOpenChange={reset}
        title="Change password"
        description="Your other sessions end; API tokens keep working."
      >
        {done ? (
          <div className="flex flex-col gap-3">
            <p role="status" className="text-sm text-green-800">
              Password changed. Your other sessions have ended.
            </p>
            <div className="flex justify-end">
              <Button onClick={() => reset(false)}>Close</Button>
            </div>
          </div>
        ) : (
          <form onSubmit={submit} className="flex flex-col gap-3">
            <Field label="Current password" error={errs.current_password}>
              {(p) => (
                <input
                  {...p}
                  type="password"
                  autoComplete="current-password"
                  required
                  value={current}
                  onChange={(e) => setCurrent(e.target.value)}
                />
              )}
            </Field>
            <Field label="New password" error={errs.new_password} hint={`At least ${PASSWORD_MIN_LENGTH} characters`}>
              {(p) => (
                <input
                  {...p}
                  type="password"
                  autoComplete="new-password"
                  required
                  minLength={PASSWORD_MIN_LENGTH}
                  value={next}
                  onChange={(e) => setNext(e.target.value)}
                />
              )}
            </Field>
            <Field label="New password again" error={mismatch}>
              {(p) => (
                <input
                  {...p}
                  type="password"
                  autoComplete="new-password"
                  required
                  value={again}
                  onChange={(e) => setAgain(e.target.value)}
                />
              )}
            </Field>
            {error && !Object.keys(errs).length ? (
              <p role="alert" className="text-sm text-red-600">
                {errorMessage(error)}
              </p>
            ) : null}
            <div className="flex justify-end gap-2">
              <Button onClick={() => reset(false)}>Cancel</Button>
              <Button type="submit" variant="primary" disabled={busy || Boolean(mismatch)}>
                Change password
              </Button>
            </div>
          </form>
        )}
      </Modal>
    </>
  );
}
