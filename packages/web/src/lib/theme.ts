import { useSyncExternalStore } from 'react';

/** What the user chose: follow the OS, or one theme whatever the OS says. */
export type ThemeChoice = 'system' | 'light' | 'dark';
const KEY = 'nqvm.theme';
const listeners = new Set<() => void>();
const media = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : undefined;

export function themeChoice(): ThemeChoice {
  const v = localStorage.getItem(KEY);
  return v === 'light' || v === 'dark' ? v : 'system';
}

export function isDark(): boolean {
  const c = themeChoice();
  return c === 'dark' || (c === 'system' && Boolean(media?.matches));
}

function apply(): void {
  document.documentElement.classList.toggle('dark', isDark());
  for (const fn of listeners) fn();
}

export function setThemeChoice(c: ThemeChoice): void {
  if (c === 'system') localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, c);
  apply();
}

/** Puts the theme on <html> now and whenever the OS switches. */
export function startTheme(): void {
  apply();
  media?.addEventListener('change', apply);
}

export function onThemeChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Re-renders on a theme change; answers whether the page is dark. */
export function useDark(): boolean {
  return useSyncExternalStore(onThemeChange, isDark);
}

export function useThemeChoice(): ThemeChoice {
  return useSyncExternalStore(onThemeChange, themeChoice);
}

/** A colour of the palette as the current theme defines it (charts and the terminal draw on canvas). */
export function cssColor(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(`--color-${name}`).trim() || name;
}

export function terminalTheme(): { background: string; foreground: string; cursor: string } {
  return isDark()
    ? { background: '#0b1120', foreground: '#e2e8f0', cursor: '#e2e8f0' }
    : { background: '#ffffff', foreground: '#0f172a', cursor: '#0f172a' };
}
