import { randomUUID } from 'node:crypto';
import { config } from '../config';
import { OrganizationReader } from '../engine/memberships';
import type { EnginePorts } from '../engine/ports';
import { forgetManagedServices, managedServices } from '../managed-services';
import { admissionPlaces } from './admission-store';
import { connectionRecords } from './connection-store';
import { ec2Connections } from './ec2-gateway';
import { ec2ClientIn, fleetSpokes, forgetSpokeClients, hubSpoke, spokeKey } from './spoke-clients';
import type { Spoke } from '../domain/spokes';
import type { Ec2Connections, Ec2Locations } from '../engine/ports';
import { publishEvent } from './event-publisher';
import { membershipCache, sharedPrincipals } from './organization-store';
import { forgetOrganizationsClient, organizationsApi } from './organizations-gateway';
import { policyVersions } from './policy-store';

let shared: EnginePorts | undefined;

/**
 * The engine's ports on AWS: this account's EC2 in the function's Region, the
 * table, SNS, Organizations. Made once per container, so that what it caches
 * (memberships, OU paths) serves every invocation.
 */
export function awsPorts(): EnginePorts {
  shared ??= createPorts();
  return shared;
}

function createPorts(): EnginePorts {
  const { DECISION_LEASE_SECONDS, ORGANIZATION_CACHE_TTL } = config();
  const clock = { now: () => new Date() };
  return {
    ec2: fleetEc2(),
    services: managedServices,
    records: connectionRecords(),
    policies: policyVersions(),
    places: admissionPlaces(),
    sharing: sharedPrincipals(),
    memberships: new OrganizationReader(organizationsApi(), membershipCache(), { ttlSeconds: ORGANIZATION_CACHE_TTL, clock }),
    publisher: { publish: (event) => publishEvent(event) },
    clock,
    newId: randomUUID,
    settings: { leaseSeconds: DECISION_LEASE_SECONDS },
  };
}

/**
 * EC2 where each service lives: the spoke the managed services' listing found it in (the hub's own
 * account and Region when no spoke is configured, or for a service not found), through that
 * spoke's client. A service's connections are named with its spoke when the hub's account is known.
 */
function fleetEc2(): Ec2Locations {
  const bySpoke = new Map<string, Ec2Connections>();
  const connectionsIn = (spoke: Spoke) => {
    const key = spokeKey(spoke);
    let connections = bySpoke.get(key);
    if (!connections) {
      connections = ec2Connections(ec2ClientIn(spoke), spoke.accountId ? spoke : undefined);
      bySpoke.set(key, connections);
    }
    return connections;
  };
  return {
    forService: (serviceId) => connectionsIn(managedServices.locationOf?.(serviceId) ?? hubSpoke()),
    all: () => fleetSpokes().map(connectionsIn),
  };
}

/** Forgets what this container remembers of the organization and the fleet (the local stack's reset: its containers start cold). */
export function forgetContainerState(): void {
  shared?.memberships.forget();
  forgetOrganizationsClient();
  forgetManagedServices();
  forgetSpokeClients();
  shared = undefined;
}
