import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** A kernel module found in an extracted kernel package, keyed by its normalised name (`-` → `_`). */
export interface KernelModule {
  name: string;
  /** Path relative to `lib/modules/<version>/`, e.g. `kernel/drivers/virtio/virtio.ko`. */
  relPath: string;
  depends: string[];
}

export const normaliseModuleName = (name: string): string => name.replace(/-/g, '_');

/** Reads `depends=` from a .ko's .modinfo section (a NUL-separated key=value list) without modinfo(8). */
export function parseModinfoDepends(ko: Buffer): string[] {
  const key = Buffer.from('\0depends=');
  const at = ko.indexOf(key);
  if (at < 0) return [];
  const start = at + key.length;
  const end = ko.indexOf(0, start);
  const value = ko.subarray(start, end < 0 ? undefined : end).toString('utf8');
  return value
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d.length > 0)
    .map(normaliseModuleName);
}

/** Indexes every `.ko` under `<modulesDir>/kernel` (uncompressed modules, as Debian's cloud kernel ships). */
export async function indexModules(modulesDir: string): Promise<Map<string, KernelModule>> {
  const index = new Map<string, KernelModule>();
  const entries = await readdir(path.join(modulesDir, 'kernel'), { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (!e.isFile() || !e.name.endsWith('.ko')) continue;
    const abs = path.join(e.parentPath, e.name);
    const name = normaliseModuleName(e.name.slice(0, -3));
    index.set(name, {
      name,
      relPath: path.relative(modulesDir, abs),
      depends: parseModinfoDepends(await readFile(abs)),
    });
  }
  return index;
}

/**
 * The wanted modules plus their dependencies, dependencies first, each once. Wanted names absent from the
 * index are skipped (built in or not shipped by this kernel); a missing dependency is an error.
 */
export function moduleLoadOrder(
  wanted: readonly string[],
  index: ReadonlyMap<string, Pick<KernelModule, 'name' | 'depends'>>,
): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: readonly string[]): void => {
    if (seen.has(name)) return;
    if (chain.includes(name)) throw new Error(`module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const mod = index.get(name);
    if (!mod) throw new Error(`module ${name} needed by ${chain.at(-1) ?? '?'} is not in the kernel package`);
    for (const dep of mod.depends) visit(dep, [...chain, name]);
    seen.add(name);
    order.push(name);
  };
  for (const w of wanted) {
    const name = normaliseModuleName(w);
    if (index.has(name)) visit(name, []);
  }
  return order;
}

/** A modules.dep (depmod's text format) for the given modules, enough for busybox modprobe. */
export function modulesDep(names: readonly string[], index: ReadonlyMap<string, KernelModule>): string {
  const lines: string[] = [];
  for (const name of names) {
    const mod = index.get(name);
    if (!mod) continue;
    // depmod lists the full dependency closure, the module to load last first
    const deps = moduleLoadOrder([name], index)
      .filter((d) => d !== name)
      .reverse()
      .map((d) => index.get(d)?.relPath ?? '');
    lines.push(`${mod.relPath}:${deps.length ? ` ${deps.join(' ')}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
