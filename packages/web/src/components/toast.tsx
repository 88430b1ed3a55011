import { Toast as T } from 'radix-ui';
import { createContext, type ReactNode, useCallback, useContext, useState } from 'react';

interface ToastItem {
  id: number;
  title: string;
  tone: 'info' | 'error';
}
const ToastContext = createContext<(title: string, tone?: ToastItem['tone']) => void>(() => {});

export function useToast() {
  return useContext(ToastContext);
}

let nextId = 1;

export function ToastProvider({ children }: { children: ReactNode }) {
  const [items, setItems] = useState<ToastItem[]>([]);
  const push = useCallback((title: string, tone: ToastItem['tone'] = 'info') => {
    setItems((xs) => [...xs.slice(-4), { id: nextId++, title, tone }]);
  }, []);
  return (
    <ToastContext.Provider value={push}>
      <T.Provider swipeDirection="right" duration={5000}>
        {children}
        {items.map((t) => (
          <T.Root
            key={t.id}
            onOpenChange={(open) => (open ? undefined : setItems((xs) => xs.filter((x) => x.id !== t.id)))}
            className={`rounded-md border px-4 py-2 text-sm shadow-lg ${t.tone === 'error' ? 'border-red-300 bg-red-50 text-red-800' : 'border-slate-200 bg-white'}`}
          >
            <T.Title>{t.title}</T.Title>
          </T.Root>
        ))}
        <T.Viewport className="fixed right-4 bottom-4 z-50 flex w-80 flex-col gap-2" />
      </T.Provider>
    </ToastContext.Provider>
  );
}
