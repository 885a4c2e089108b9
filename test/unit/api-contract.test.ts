import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { routes as approvalsRoutes } from '../../handlers/http-api';
import { DEFAULT_ROUTE, routeKeyOf, type Route } from '../../lib/http/router';
import { slackRoutes } from '../../lib/slack/routes';
// @ts-expect-error: CommonJS without types, as serverless.yml loads it
import { interactionsFunction } from '../../stack/slack.cjs';

// The HTTP API is described three times: openapi.yaml (for readers and clients),
// serverless.yml (what API Gateway routes: the approvals API, and Slack's interactions
// through stack/slack.cjs) and the handlers' routers (what answers).
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

type HttpApiEvent = { httpApi?: { method: string; path: string; authorizer?: unknown } | '*' };

/** The Slack settings of a stage that configures Slack, as `--param` would give them. */
const SLACK_PARAMS: Record<string, string> = {
  slackChannel: 'C0123456789',
  slackApprovers: 'U0123ABCD',
  slackBotTokenParameter: '/vpce-gatekeeper/test/slack-bot-token',
  slackSigningSecretParameter: '/vpce-gatekeeper/test/slack-signing-secret',
};

async function serverlessRoutes(): Promise<{ method: string; path: string; authorizer?: unknown }[]> {
  const stack = readYaml('serverless.yml') as { functions: Record<string, { handler: string; events?: HttpApiEvent[] } | string> };
  const resolveVariable = async (name: string) => ({ 'self:service': 'vpce-gatekeeper', 'sls:stage': 'test' })[name] ?? SLACK_PARAMS[name.replace(/^param:/, '')] ?? '';
  const slack = (await interactionsFunction({ resolveVariable })) as { handler: string; events: HttpApiEvent[] };
  expect(Object.values(stack.functions)).toContain('${file(./stack/slack.cjs):interactionsFunction, null}');
  return [...Object.values(stack.functions), slack]
    .filter((fn) => typeof fn === 'object' && ['handlers/http-api.handler', 'handlers/slack-interactions.handler'].includes(fn.handler))
    .flatMap((fn) => ((fn as { events?: HttpApiEvent[] }).events ?? []).flatMap((event) => (event.httpApi === '*' ? [{ method: 'ANY', path: DEFAULT_ROUTE }] : event.httpApi ? [event.httpApi] : [])));
}

/** Every handler's routes. */
function handlerRoutes(): Route[] {
  return [...approvalsRoutes, ...slackRoutes];
}

const sorted = (keys: string[]) => [...keys].sort();

describe('the HTTP API contract', () => {
  it('lists the same routes in openapi.yaml, serverless.yml and the handlers', async () => {
    const inHandler = (handlerRoutes()).map(routeKeyOf);
    const inServerless = (await serverlessRoutes()).map((route) => routeKeyOf({ method: route.method.toUpperCase() as 'GET', path: route.path }));

    expect(inHandler.length).toBe(new Set(inHandler).size);
    // OpenAPI has no word for API Gateway's catch-all; it documents the paths the catch-all answers.
    expect(sorted(openApiRouteKeys())).toEqual(sorted(inHandler.filter((key) => key !== DEFAULT_ROUTE)));
    expect(inHandler).toContain(DEFAULT_ROUTE);
    expect(sorted(inServerless)).toEqual(sorted(inHandler));
  });

  it("puts an authorizer on every route in serverless.yml but the console's page and assets and Slack's interactions, which are public in all three", async () => {
    const routes = handlerRoutes();
    const publicInHandler = routes.filter((route) => route.access === 'public').map(routeKeyOf);
    expect(sorted(publicInHandler)).toEqual(['$default', 'GET /console', 'GET /console/{asset}', 'GET /favicon.ico', 'POST /chat/slack/interactions']);
    for (const route of await serverlessRoutes()) {
      const key = routeKeyOf({ method: route.method.toUpperCase() as 'GET', path: route.path });
      expect(route.authorizer, key).toBe(publicInHandler.includes(key) ? undefined : '${self:custom.apiAuthorizer}');
    }
    const document = readYaml('openapi.yaml') as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    for (const key of publicInHandler.filter((key) => key !== DEFAULT_ROUTE)) {
      const [method = '', path = ''] = key.split(' ');
      expect(document.paths[path]?.[method.toLowerCase()]?.security, key).toEqual([]);
    }
  });
});
