import { z } from 'zod';
import { ACCOUNT_ID, ACCOUNT_ID_MESSAGE, ORGANIZATION_ID, ORGANIZATION_ID_MESSAGE } from '../../lib/domain/ids';
import { parseJsonBody } from '../http-io';
import type { OrganizationPlane } from '../aws/organization-plane';
import { created, ok, type Route } from './router';

const parentId = z.string().regex(/^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$/, 'must be a root id (r-…) or an OU id (ou-…)');
const status = z.enum(['ACTIVE', 'SUSPENDED'], { error: 'must be ACTIVE or SUSPENDED' });

const createOrganizationBody = z.strictObject({
  organizationId: z.string().regex(ORGANIZATION_ID, ORGANIZATION_ID_MESSAGE).optional(),
});
const createUnitBody = z.strictObject({ parentId, name: z.string().min(1, 'must not be empty').max(128, 'must be at most 128 characters') });
const addAccountBody = z.strictObject({
  accountId: z.string().regex(ACCOUNT_ID, ACCOUNT_ID_MESSAGE),
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
