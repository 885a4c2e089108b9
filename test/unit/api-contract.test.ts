import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { routes } from '../../handlers/http-api';
import { routeKeyOf } from '../../lib/http/router';

// The approvals API is described three times: openapi.yaml (for readers and clients),
// serverless.yml (what API Gateway routes) and the handler's router (what answers).
// They must list the same routes, or a route is documented but unreachable, or reachable
// but unanswered.

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

function readYaml(file: string): unknown {
  // CloudFormation's short tags (!Ref, !Sub...) are left unresolved: only the routes matter here.
  return parse(readFileSync(`${repoRoot}/${file}`, 'utf8'), { logLevel: 'silent' });
}

function openApiRouteKeys(): string[] {
  const document = readYaml('openapi.yaml') as { openapi: string; paths: Record<string, Record<string, unknown>> };
  expect(document.openapi).toMatch(/^3\./);
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((key) => METHODS.includes(key))
      .map((method) => `${method.toUpperCase()} ${path}`),
  );
}

function serverlessRoutes(): { method: string; path: string; authorizer?: unknown }[] {
  const stack = readYaml('serverless.yml') as {
    functions: Record<string, { handler: string; events?: { httpApi?: { method: string; path: string; authorizer?: unknown } }[] }>;
  };
  return Object.values(stack.functions)
    .filter((fn) => fn.handler === 'handlers/http-api.handler')
    .flatMap((fn) => (fn.events ?? []).flatMap((event) => (event.httpApi ? [event.httpApi] : [])));
}

const sorted = (keys: string[]) => [...keys].sort();

describe('the approvals API contract', () => {
  it('lists the same routes in openapi.yaml, serverless.yml and the handler', () => {
    const inHandler = routes.map(routeKeyOf);
    const inServerless = serverlessRoutes().map((route) => routeKeyOf({ method: route.method.toUpperCase() as 'GET', path: route.path }));

    expect(inHandler.length).toBe(new Set(inHandler).size);
    expect(sorted(openApiRouteKeys())).toEqual(sorted(inHandler));
    expect(sorted(inServerless)).toEqual(sorted(inHandler));
  });

  it("puts an authorizer on every route in serverless.yml but the console's page and assets, which are public in all three", () => {
    const publicInHandler = routes.filter((route) => route.access === 'public').map(routeKeyOf);
    expect(sorted(publicInHandler)).toEqual(['GET /console', 'GET /console/', 'GET /console/{asset}', 'GET /favicon.ico']);
    for (const route of serverlessRoutes()) {
      const key = routeKeyOf({ method: route.method.toUpperCase() as 'GET', path: route.path });
      expect(route.authorizer, key).toBe(publicInHandler.includes(key) ? undefined : '${self:custom.apiAuthorizer}');
    }
    const document = readYaml('openapi.yaml') as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    for (const key of publicInHandler) {
      const [method = '', path = ''] = key.split(' ');
      expect(document.paths[path]?.[method.toLowerCase()]?.security, key).toEqual([]);
    }
  });
});
