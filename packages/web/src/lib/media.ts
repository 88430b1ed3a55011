import { useSyncExternalStore } from 'react';

/** Whether a CSS media query matches, kept current (narrow screens get cards instead of a table). */
export function useMediaQuery(query: string): boolean {
  return useSyncExternalStore(
    (fn) => {
      const m = matchMedia(query);
      m.addEventListener('change', fn);
      return () => m.removeEventListener('change', fn);
    },
    () => matchMedia(query).matches,
  );
}
