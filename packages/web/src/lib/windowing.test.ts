import { describe, expect, it } from 'vitest';
import { rowWindow, scrollToRow } from './windowing.ts';

describe('rowWindow', () => {
  it('renders only the rows in view plus the overscan, padding the rest', () => {
    const w = rowWindow(0, 360, 36, 1000, 5);
    expect(w).toEqual({ start: 0, end: 16, padTop: 0, padBottom: (1000 - 16) * 36 });
  });

  it('follows the scroll position and keeps the total height constant', () => {
    const w = rowWindow(36 * 500, 360, 36, 1000, 5);
    expect(w.start).toBe(495);
    expect(w.end).toBe(516);
    expect(w.padTop + (w.end - w.start) * 36 + w.padBottom).toBe(36 * 1000);
  });

  it('clamps at the end of the list and for empty lists', () => {
    expect(rowWindow(36 * 2000, 360, 36, 1000, 5)).toMatchObject({ start: 1000, end: 1000, padBottom: 0 });
    expect(rowWindow(0, 360, 36, 0)).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0 });
  });
});

describe('scrollToRow', () => {
  it('scrolls up or down just enough to show the row, and not at all when it is visible', () => {
    expect(scrollToRow(10, 36 * 20, 360, 36)).toBe(360);
    expect(scrollToRow(40, 0, 360, 36)).toBe(41 * 36 - 360);
    expect(scrollToRow(3, 0, 360, 36)).toBe(0);
  });

  it('keeps a sticky header from covering the row', () => {
    expect(scrollToRow(9, 0, 360, 36, 30)).toBe(10 * 36 - 360 + 30);
  });
});
