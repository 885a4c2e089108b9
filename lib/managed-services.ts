import { describeEndpointServices, listEndpointServiceIds, listTaggedEndpointServiceIds } from './aws/ec2-gateway';
import { config } from './config';
import { MANAGED_TAG } from './domain/spokes';
import type { ManagedServices } from './engine/ports';

/** The tag that puts an endpoint service under management (with RECONCILE_TAGGED_SERVICES). */
export { MANAGED_TAG };

/**
 * How long what EC2 said about a service's tag is trusted. Tagging a service
 * brings it under management within this long, on every entry point.
 */
const TAG_CACHE_MS = 60_000;
const tagged = new Map<string, { managed: boolean; until: number }>();

/**
 * The endpoint services this stage manages: the configured list (else every
 * endpoint service of the account), plus, with RECONCILE_TAGGED_SERVICES, every
 * one tagged vpce-gatekeeper:managed=true. Sorted.
 */
export async function managedServiceIds(): Promise<string[]> {
  const { MANAGED_SERVICE_IDS: configured, RECONCILE_TAGGED_SERVICES: withTagged } = config();
  const ids = new Set(configured.length ? configured : await listEndpointServiceIds());
  if (configured.length && withTagged) {
    const taggedIds = await listTaggedEndpointServiceIds(MANAGED_TAG);
    for (const id of taggedIds) ids.add(id);
    rememberTagged(taggedIds);
  }
  return [...ids].sort();
}

/**
 * Whether this stage manages an endpoint service: the one answer that the
 * notifications, the reconciler, the approvals API and policy evaluation share.
 * With no list configured every endpoint service of the account is managed (EC2
 * only ever shows the account's own); a tagged one asks EC2, and is remembered
 * for a minute.
 */
export async function isManagedService(serviceId: string): Promise<boolean> {
  const { MANAGED_SERVICE_IDS: configured, RECONCILE_TAGGED_SERVICES: withTagged } = config();
  if (!configured.length || configured.includes(serviceId)) return true;
  if (!withTagged) return false;
  const known = tagged.get(serviceId);
  if (known && known.until > Date.now()) return known.managed;
  const [service] = await describeEndpointServices([serviceId]);
  const managed = service?.tags[MANAGED_TAG.key] === MANAGED_TAG.value;
  tagged.set(serviceId, { managed, until: Date.now() + TAG_CACHE_MS });
  return managed;
}

function rememberTagged(serviceIds: string[]): void {
  const until = Date.now() + TAG_CACHE_MS;
  for (const serviceId of serviceIds) tagged.set(serviceId, { managed: true, until });
}

/** The answer to which services are managed, as the engine reaches it. */
export const managedServices: ManagedServices = { ids: managedServiceIds, isManaged: isManagedService };
