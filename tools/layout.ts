/**
 * The placement rule of the repository as data, and the checks `npm run lint` runs over the import graph
 * (scripts/check-layout.ts builds the graph with madge). docs/layout.md explains the rule; this table is its
 * one source of truth.
 */

/** File → the repository files it imports (type-only imports included: a circle of types is still a circle). */
export type ImportGraph = Readonly<Record<string, readonly string[]>>;

export interface Area {
  /** A folder of the repository; `lambdas/*` stands for each function's folder, each its own area. */
  readonly folder: string;
  readonly holds: string;
  /** Areas whose files this one may import, besides its own folder and the folders below it. */
  readonly mayImport: readonly string[];
  /** Its files are entry points only: none imports another file of the folder (their libraries go below them). */
  readonly entryPoints?: boolean;
}

/** Every area, from the bottom up: an area imports only from areas above it in this list, or from none. */
export const LAYOUT: readonly Area[] = [
  {
    folder: 'shared',
    holds: 'the domain: the contract between the layers at its top, each layer in shared/<layer>/',
    mayImport: [],
  },
  {
    folder: 'traffic',
    holds: 'synthetic traffic: the generator, hostile cases, live sending',
    mayImport: ['shared'],
  },
  { folder: 'tools', holds: 'libraries of the command-line tools (no entry points)', mayImport: ['shared'] },
  { folder: 'lambdas/*', holds: "one function's handler, thin over shared/", mayImport: ['shared'] },
  { folder: 'infra', holds: 'the CDK app and its constructs', mayImport: ['shared'] },
  { folder: 'dashboard', holds: 'the browser dashboard and its build', mayImport: ['shared'] },
  {
    folder: 'local',
    holds: 'the local stack: emulators, stand-ins for the managed services, `npm start`',
    mayImport: ['shared', 'lambdas/*', 'traffic', 'tools', 'dashboard'],
  },
  {
    folder: 'bench',
    holds: 'benchmark sections; their libraries in bench/support/, naive baselines in bench/baseline/',
    mayImport: ['shared', 'lambdas/*', 'local', 'traffic', 'tools'],
  },
  {
    folder: 'scripts',
    holds: "the npm scripts' entry points",
    mayImport: ['shared', 'lambdas/*', 'local', 'traffic', 'tools', 'bench/support'],
    entryPoints: true,
  },
  { folder: 'test', holds: 'the test suites and their support', mayImport: ['*'] },
];

const folderOf = (file: string): string => file.split('/').slice(0, -1).join('/');

/** The area a file belongs to: the longest matching folder (`lambdas/<fn>` for `lambdas/*`). */
export function areaOf(file: string, layout: readonly Area[] = LAYOUT): string | undefined {
  const [top, second] = file.split('/');
  let found: string | undefined;
  for (const { folder } of layout) {
    const concrete = folder === 'lambdas/*' && top === 'lambdas' && second ? `lambdas/${second}` : folder;
    if (file.startsWith(`${concrete}/`) && (!found || concrete.length > found.length)) found = concrete;
  }
  return found;
}

const ruleOf = (area: string, layout: readonly Area[]): Area | undefined =>
  layout.find(({ folder }) => folder === area || (folder === 'lambdas/*' && area.startsWith('lambdas/')));

/** Whether `to` lies in one of the folders an area may import (`lambdas/*`: any function's folder). */
function allowed(rule: Area, area: string, to: string): boolean {
  if (to.startsWith(`${area}/`)) return !rule.entryPoints;
  return rule.mayImport.some((folder) =>
    folder === '*' ? true : folder === 'lambdas/*' ? to.startsWith('lambdas/') : to.startsWith(`${folder}/`),
  );
}

/** Imports that leave a file's area for one it may not import (a root file, like vitest.config.ts, may import any). */
export function forbiddenImports(graph: ImportGraph, layout: readonly Area[] = LAYOUT): string[] {
  const problems: string[] = [];
  for (const [file, imports] of Object.entries(graph)) {
    if (!file.includes('/')) continue;
    const area = areaOf(file, layout);
    const rule = area === undefined ? undefined : ruleOf(area, layout);
    if (!area || !rule) {
      problems.push(`${file}: in no area of the layout (tools/layout.ts)`);
      continue;
    }
    for (const to of imports) {
      if (allowed(rule, area, to)) continue;
      problems.push(
        rule.entryPoints && to.startsWith(`${area}/`)
          ? `${file} imports ${to}: ${area}/ holds entry points only (a library goes in tools/)`
          : `${file} imports ${to}: ${area}/ may not import ${folderOf(to)}/`,
      );
    }
  }
  return problems.sort();
}

/**
 * Folders that import from each other, directly or round a loop: the strongly connected components of the
 * folder graph (each folder a node, an edge where one of its files imports a file of another), with the
 * imports that close them.
 */
export function folderCycles(graph: ImportGraph): string[][] {
  const edges = new Map<string, Map<string, string>>();
  for (const [file, imports] of Object.entries(graph)) {
    for (const to of imports) {
      const [a, b] = [folderOf(file), folderOf(to)];
      if (a === b) continue;
      if (!edges.has(a)) edges.set(a, new Map());
      if (!edges.get(a)!.has(b)) edges.get(a)!.set(b, `${file} -> ${to}`);
    }
  }
  // Tarjan's algorithm; the graph is a few dozen folders, so recursion depth is no concern.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node)?.keys() ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const node of edges.keys()) if (!index.has(node)) visit(node);
  return components.map((component) => {
    const members = new Set(component);
    const closing = component.flatMap((from) =>
      [...(edges.get(from) ?? [])].filter(([to]) => members.has(to)).map(([, example]) => example),
    );
    return [...component.map((folder) => `${folder || '.'}/`), ...closing.map((line) => `  ${line}`)];
  });
}
