import { CallLog } from './call-log';
import type { Faults } from './faults';
import { LocalOrganizationsApi } from './organizations-api';
import { MANAGEMENT_ACCOUNT_ID, OrganizationSimulator } from './organizations-simulator';
import type { LocalSts } from './sts-api';

/** The read-only role in the management account that the local functions assume, and the external id its trust requires. */
export const LOCAL_ORGANIZATIONS_ROLE_ARN = `arn:aws:iam::${MANAGEMENT_ACCOUNT_ID}:role/vpce-gatekeeper-local-organizations-read`;
export const LOCAL_ORGANIZATIONS_EXTERNAL_ID = 'vpce-gatekeeper-local';

/** The organization, the Organizations API over it, and the calls it received. */
export interface OrganizationPlane {
  simulator: OrganizationSimulator;
  api: LocalOrganizationsApi;
  calls: CallLog;
  /** No organization, no calls counted, every rate bucket full. */
  reset(): void;
}

/** The read-only role (stack/organizations-read-role.yml) the local STS lets the functions assume. */
export const LOCAL_ORGANIZATIONS_ROLE = { roleArn: LOCAL_ORGANIZATIONS_ROLE_ARN, externalId: LOCAL_ORGANIZATIONS_EXTERNAL_ID };

/** An empty organization behind its API, reachable through the local role that `sts` issues sessions of. */
export function createOrganizationPlane(faults: Faults, sts: LocalSts): OrganizationPlane {
  const simulator = new OrganizationSimulator();
  const calls = new CallLog();
  const api = new LocalOrganizationsApi({ organization: simulator, faults, calls, sts });
  return {
    simulator,
    api,
    calls,
    reset: () => {
      simulator.reset();
      calls.reset();
      api.reset();
    },
  };
}
