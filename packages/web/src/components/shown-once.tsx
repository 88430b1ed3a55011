import { useState } from 'react';
import { Button } from './ui.tsx';

/** A secret the API returns only once (a token, a signing key): shown with a copy button until dismissed. */
export function ShownOnce({
  what,
  value,
  hint,
  onDone,
}: {
  what: string;
  value: string;
  hint?: string;
  onDone: () => void;
}) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="mb-4 rounded-md border border-green-300 bg-green-50 p-3 text-sm" data-testid="shown-once">
      <p className="mb-2 font-medium text-green-900">
        {what}. Copy it now: it is shown only once.{hint ? ` ${hint}` : ''}
      </p>
      <div className="flex flex-wrap items-center gap-2">
        <code className="rounded bg-white px-2 py-1 break-all" data-testid="shown-once-value">
          {value}
        </code>
        <Button
          onClick={async () => {
            await navigator.clipboard?.writeText(value).catch(() => undefined);
            setCopied(true);
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </Button>
        <Button variant="ghost" onClick={onDone}>
          Done
        </Button>
      </div>
    </div>
  );
}
