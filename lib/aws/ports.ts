import { randomUUID } from 'node:crypto';
import { config } from '../config';
import { OrganizationReader } from '../engine/memberships';
import type { EnginePorts } from '../engine/ports';
import { managedServices } from '../managed-services';
import { admissionPlaces } from './admission-store';
import { connectionRecords } from './connection-store';
import { ec2Connections } from './ec2-gateway';
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
  const ec2 = ec2Connections();
  return {
    ec2: { forService: () => ec2, all: () => [ec2] },
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

/** Forgets what this container remembers of the organization (the local stack's reset: its containers start cold). */
export function forgetOrganization(): void {
  shared?.memberships.forget();
  forgetOrganizationsClient();
}
