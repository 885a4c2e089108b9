import { logger } from '../logger';
import * as v from '../validation';
import { NotFoundError } from '../errors';
import { callerOf, requireApprover, type Approvers, type Caller } from './auth';
import { httpApiEventSchema, type HttpApiEvent } from './request';
import { errorResponse, type HttpResponse } from './responses';

/**
 * `read`: any authenticated caller. `approve`: approvers only (accept, reject, policy changes).
 * `public`: deployed without an authorizer (the console's static assets): no caller is established.
 */
export type Access = 'read' | 'approve' | 'public';

/** What a route's handler is given: the event, and the caller it was authenticated as. */
export interface ApiRequest {
  event: HttpApiEvent;
  /** On a public route, a placeholder that no check admits. */
  caller: Caller;
}

export interface Route {
  /** `ANY` only for the default route. */
  method: 'GET' | 'POST' | 'PUT' | 'ANY';
  /**
   * As API Gateway spells it: `/services/{serviceId}/connections`; or `$default`, API Gateway's
   * route for every request that no other route takes.
   */
  path: string;
  access: Access;
  handle: (request: ApiRequest) => Promise<HttpResponse>;
}

/** Who calls a public route: nobody in particular. */
const ANONYMOUS: Caller = Object.freeze({ principal: 'anonymous', groups: [], via: 'iam' as const });

/** The route API Gateway takes for a request no other route takes; its route key is just this. */
export const DEFAULT_ROUTE = '$default';

/** The route key API Gateway puts in the event: `GET /services/{serviceId}/connections`, or `$default`. */
export function routeKeyOf(route: Pick<Route, 'method' | 'path'>): string {
  return route.path === DEFAULT_ROUTE ? DEFAULT_ROUTE : `${route.method} ${route.path}`;
}

export interface Authorization extends Approvers {
  /** The JWT claim holding the caller's groups. */
  groupsClaim: string;
}

/**
 * Serves HTTP API (payload 2.0) events: finds the route by the event's route
 * key, establishes the caller from the request context, checks the route's
 * access, and maps whatever is thrown to a status in lib/http/responses.ts.
 */
export function serveRoutes(routes: Route[], authorization: () => Authorization): (event: unknown) => Promise<HttpResponse> {
  const byKey = new Map(routes.map((route) => [routeKeyOf(route), route]));
  return async (raw) => {
    const parsed = v.safeParse(httpApiEventSchema, raw);
    if (!parsed.success) {
      const issues = v.problems(parsed.issues);
      logger.error('not an HTTP API payload 2.0 event', { issues });
      // Not the caller's mistake (API Gateway builds the event): answered as an internal error.
      return errorResponse(new Error('not an HTTP API payload 2.0 event'), 'unknown');
    }
    const event = parsed.output;
    const { requestId } = event.requestContext;
    logger.appendKeys({ routeKey: event.routeKey, apiRequestId: requestId });
    try {
      const route = byKey.get(event.routeKey);
      if (!route) throw new NotFoundError(`no route ${event.routeKey}`);
      if (route.access === 'public') return await route.handle({ event, caller: ANONYMOUS });
      const { groupsClaim, ...approvers } = authorization();
      const caller = callerOf(event, groupsClaim);
      logger.appendKeys({ caller: caller.principal });
      if (route.access === 'approve') requireApprover(caller, approvers);
      const response = await route.handle({ event, caller });
      logger.info('request handled', { status: response.statusCode });
      return response;
    } catch (error) {
      const response = errorResponse(error, requestId);
      if ((response.statusCode ?? 500) >= 500) logger.error('request failed', { status: response.statusCode, error });
      else logger.info('request refused', { status: response.statusCode, reason: error instanceof Error ? error.message : String(error) });
      return response;
    }
  };
}
