import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { expect, it } from 'vitest';

// No module of the product imports itself back, even through types: a cycle makes the order in
// which modules load decide what a module sees, and makes the code hard to read from the top.
// The graph is TypeScript's own: every import, export-from and import() of every file, resolved
// as tsc resolves them.

const ROOT = resolve(import.meta.dirname, '../..');
const FOLDERS = ['lib', 'handlers', 'local', 'cli', 'console/src'];

function sourceFiles(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts'))
    .map((entry) => join(entry.parentPath, entry.name));
}

function importGraph(files: string[]): Map<string, string[]> {
  const options: ts.CompilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.Bundler, allowJs: true };
  const known = new Set(files);
  return new Map(
    files.map((file) => {
      const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      const targets = importedFiles
        .map(({ fileName }) => ts.resolveModuleName(fileName, file, options, ts.sys).resolvedModule?.resolvedFileName)
        .filter((target): target is string => target !== undefined && known.has(target));
      return [file, [...new Set(targets)]];
    }),
  );
}

/** Every cycle, each once, as the files around it starting from the smallest name. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found = new Map<string, string[]>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') {
        const cycle = stack.slice(stack.indexOf(next));
        const start = cycle.indexOf([...cycle].sort()[0] ?? next);
        const rotated = [...cycle.slice(start), ...cycle.slice(0, start)];
        found.set(rotated.join(' > '), rotated);
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return [...found.values()];
}

it('finds a cycle when there is one (the check can fail)', () => {
  const graph = new Map([
    ['/a.ts', ['/b.ts']],
    ['/b.ts', ['/c.ts']],
    ['/c.ts', ['/a.ts']],
    ['/d.ts', ['/a.ts']],
  ]);
  expect(cycles(graph)).toEqual([['/a.ts', '/b.ts', '/c.ts']]);
});

it('has no import cycle in lib, handlers, local, cli or the console', () => {
  const files = FOLDERS.flatMap(sourceFiles);
  const graph = importGraph(files);
  expect(files.length).toBeGreaterThan(100);
  expect([...graph.values()].flat().length).toBeGreaterThan(files.length); // the imports were resolved
  expect(cycles(graph).map((cycle) => cycle.map((file) => relative(ROOT, file)).join(' > '))).toEqual([]);
});
