import { z } from 'zod';
import { ORGANIZATION_ID } from '../lib/domain/organization';
import { CallLog } from './call-log';
import type { Faults } from './faults';
import { parseJsonBody } from './http-io';
import { LocalOrganizationsApi } from './organizations-api';
import { MANAGEMENT_ACCOUNT_ID, OrganizationSimulator } from './organizations-simulator';
import type { JsonReply, Route } from './server';
import { LocalSts } from './sts-api';

/** The read-only role in the management account that the local functions assume, and the external id its trust requires. */
export const LOCAL_ORGANIZATIONS_ROLE_ARN = `arn:aws:iam::${MANAGEMENT_ACCOUNT_ID}:role/vpce-gatekeeper-local-organizations-read`;
export const LOCAL_ORGANIZATIONS_EXTERNAL_ID = 'vpce-gatekeeper-local';

/** The organization, the Organizations API over it, the STS in front of it, and the calls it received. */
export interface OrganizationPlane {
  simulator: OrganizationSimulator;
  api: LocalOrganizationsApi;
  sts: LocalSts;
  calls: CallLog;
  /** No organization, no calls counted, every rate bucket full. */
  reset(): void;
}

/** An empty organization behind its API, reachable through the local role. */
export function createOrganizationPlane(faults: Faults): OrganizationPlane {
  const simulator = new OrganizationSimulator();
  const calls = new CallLog();
  const sts = new LocalSts([{ roleArn: LOCAL_ORGANIZATIONS_ROLE_ARN, externalId: LOCAL_ORGANIZATIONS_EXTERNAL_ID }]);
  const api = new LocalOrganizationsApi({ organization: simulator, faults, calls, sts });
  return {
    simulator,
    api,
    sts,
    calls,
    reset: () => {
      simulator.reset();
      calls.reset();
      api.reset();
    },
  };
}

const parentId = z.string().regex(/^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$/, 'must be a root id (r-…) or an OU id (ou-…)');
const status = z.enum(['ACTIVE', 'SUSPENDED'], { error: 'must be ACTIVE or SUSPENDED' });

const createOrganizationBody = z.strictObject({
  organizationId: z.string().regex(ORGANIZATION_ID, 'must be an organization id such as o-a1b2c3d4e5').optional(),
});
const createUnitBody = z.strictObject({ parentId, name: z.string().min(1, 'must not be empty').max(128, 'must be at most 128 characters') });
const addAccountBody = z.strictObject({
  accountId: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
  parentId,
  status: status.default('ACTIVE'),
});
const moveAccountBody = z.strictObject({ parentId });
const statusBody = z.strictObject({ status });

/** The control routes that shape the local AWS Organization (JSON in and out; a bad body is a 400). */
export function organizationRoutes(plane: OrganizationPlane): Route[] {
  const org = plane.simulator;
  return [
    {
      method: 'POST',
      path: /^\/local\/organization$/,
      handle: (_, body) => created(org.create(parseJsonBody(body, createOrganizationBody).organizationId)),
    },
    {
      method: 'POST',
      path: /^\/local\/organization\/units$/,
      handle: (_, body) => {
        const { parentId: parent, name } = parseJsonBody(body, createUnitBody);
        return created({ organizationalUnitId: org.createUnit(parent, name).id });
      },
    },
    {
      method: 'POST',
      path: /^\/local\/organization\/accounts$/,
      handle: (_, body) => {
        const input = parseJsonBody(body, addAccountBody);
        const account = org.addAccount(input.accountId, input.parentId, input.status);
        return created({ accountId: account.id, parentId: account.parentId, status: account.status });
      },
    },
    {
      method: 'POST',
      path: /^\/local\/organization\/accounts\/([^/]+)\/move$/,
      handle: ([accountId = ''], body) => {
        const account = org.moveAccount(accountId, parseJsonBody(body, moveAccountBody).parentId);
        return ok({ accountId: account.id, parentId: account.parentId, status: account.status });
      },
    },
    {
      method: 'PATCH',
      path: /^\/local\/organization\/accounts\/([^/]+)$/,
      handle: ([accountId = ''], body) => {
        const account = org.setStatus(accountId, parseJsonBody(body, statusBody).status);
        return ok({ accountId: account.id, parentId: account.parentId, status: account.status });
      },
    },
    {
      method: 'DELETE',
      path: /^\/local\/organization\/accounts\/([^/]+)$/,
      handle: ([accountId = '']) => {
        org.removeAccount(accountId);
        return ok({ accountId, removed: true });
      },
    },
    {
      method: 'GET',
      path: /^\/local\/organization\/calls$/,
      handle: () => {
        const { byAction } = plane.calls.snapshot();
        return ok({ total: Object.values(byAction).reduce((sum, count) => sum + count.received, 0), byAction });
      },
    },
  ];
}

function created(body: unknown): JsonReply {
  return { status: 201, body };
}

function ok(body: unknown): JsonReply {
  return { status: 200, body };
}
