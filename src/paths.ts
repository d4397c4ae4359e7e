/** Package-level paths: where this package is installed, and how to find an installed package's root. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_NAME = 'lie-bracket';

/**
 * The nearest ancestor of `start` (itself included) holding the package.json of package `name`,
 * or undefined. A package.json of another name (or an unreadable one) is walked past.
 */
export function packageRootFrom(start: string, name: string): string | undefined {
  let dir = start;
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name === name) return dir;
      } catch {
        // not the package's own package.json: keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

const here = dirname(fileURLToPath(import.meta.url));

/** This package's root: from src/ under vitest and from dist/ after a build (both one level down). */
export const PACKAGE_ROOT = packageRootFrom(here, PACKAGE_NAME) ?? resolve(here, '..');
