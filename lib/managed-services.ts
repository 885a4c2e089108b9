import { describeEndpointServices, listEndpointServiceIds, listEndpointServices, listTaggedEndpointServiceIds, type EndpointServiceDescription } from './aws/ec2-gateway';
import { ec2ClientIn, fleetSpokes, hubSpoke, isSameSpoke, spokeKey } from './aws/spoke-clients';
import { config } from './config';
import { MANAGED_TAG, type Spoke } from './domain/spokes';
import { POLICY_TAG } from './domain/policy';
import type { ManagedServices, SpokeStatus } from './engine/ports';
import { describeError, SpokeUnreachableError } from './errors';
import { logger } from './logger';

/** The tag that puts an endpoint service under management (with RECONCILE_TAGGED_SERVICES). */
export { MANAGED_TAG };

/**
 * How long what EC2 said about a service's tag is trusted. Tagging a service
 * brings it under management within this long, on every entry point.
 */
const TAG_CACHE_MS = 60_000;
const tagged = new Map<string, { managed: boolean; until: number }>();
/** Services described in one DescribeVpcEndpointServiceConfigurations call. */
const DESCRIBE_BATCH = 100;
/** Without spokes: each service's tags as EC2 last described them (none: not described), and until when that is trusted. */
const serviceTags = new Map<string, { tags?: Record<string, string>; until: number }>();

/**
 * The endpoint services this stage manages, and where each lives. One answer for the
 * notifications, the reconciler, the approvals API and policy evaluation.
 *
 * In its own account and Region: the configured list (else every endpoint service there), plus,
 * with RECONCILE_TAGGED_SERVICES, every one tagged vpce-gatekeeper:managed=true. In each other
 * spoke: the services tagged so, and the configured ones that live there (what the spoke's role may
 * act on). Without spokes, only the first, as it always was; with spokes, each spoke's services are
 * listed (one DescribeVpcEndpointServiceConfigurations, every page) and the listing is used for a
 * minute. A spoke that cannot be listed keeps what it listed last, and is reported.
 */
export const managedServices: ManagedServices = {
  ids: managedServiceIds,
  isManaged: isManagedService,
  locationOf: locationOfService,
  spokes: spokeStatuses,
  policyTagsOf,
  untaggedOf,
};

/**
 * The named policy each service's vpce-gatekeeper:policy tag names. With spokes, from the
 * listing; without, read from EC2 for the services not read within the minute (one call).
 */
export async function policyTagsOf(serviceIds: readonly string[]): Promise<Map<string, string>> {
  const named = new Map<string, string>();
  for (const [serviceId, tags] of await tagsOf(serviceIds)) {
    const tag = tags[POLICY_TAG];
    if (tag !== undefined) named.set(serviceId, tag);
  }
  return named;
}

/**
 * The services among these that EC2 describes without the vpce-gatekeeper:managed=true tag: the
 * stack's roles act only on tagged services (serverless.yml, stack/spoke.yml), so a service named
 * in serviceIds without it can be read but not decided. A service EC2 does not describe is left out.
 */
export async function untaggedOf(serviceIds: readonly string[]): Promise<string[]> {
  const tags = await tagsOf(serviceIds);
  return serviceIds.filter((serviceId) => {
    const described = tags.get(serviceId);
    return described !== undefined && described[MANAGED_TAG.key] !== MANAGED_TAG.value;
  });
}

/** Each service's tags as EC2 describes them (a service it does not describe is absent). */
async function tagsOf(serviceIds: readonly string[]): Promise<Map<string, Record<string, string>>> {
  const described = new Map<string, Record<string, string>>();
  if (config().SPOKES.length) {
    await listedRecently(LISTING_TTL_MS);
    for (const serviceId of serviceIds) {
      const found = find(serviceId);
      if (found) described.set(serviceId, found.service.tags);
    }
    return described;
  }
  const now = Date.now();
  const unread = serviceIds.filter((serviceId) => (serviceTags.get(serviceId)?.until ?? 0) <= now);
  for (let i = 0; i < unread.length; i += DESCRIBE_BATCH) {
    const ids = unread.slice(i, i + DESCRIBE_BATCH);
    const read = new Map((await describeEndpointServices(ids)).map((service) => [service.serviceId, service.tags]));
    // EC2 refuses a whole call naming a service it does not know: then each is read on its own.
    if (read.size < ids.length && ids.length > 1) {
      for (const serviceId of ids) for (const service of await describeEndpointServices([serviceId])) read.set(service.serviceId, service.tags);
    }
    for (const serviceId of ids) serviceTags.set(serviceId, { tags: read.get(serviceId), until: now + TAG_CACHE_MS });
  }
  for (const serviceId of serviceIds) {
    const tags = serviceTags.get(serviceId)?.tags;
    if (tags) described.set(serviceId, tags);
  }
  return described;
}

/** The managed services' ids, sorted; `fresh`: the spokes listed now. */
export async function managedServiceIds(options: { fresh?: boolean } = {}): Promise<string[]> {
  if (!config().SPOKES.length) return hubServiceIds();
  await listedRecently(options.fresh ? 0 : LISTING_TTL_MS);
  return [...listings.values()].flatMap((listing) => listing.services.filter((service) => managedIn(listing.spoke, service)).map(({ serviceId }) => serviceId)).sort();
}

/**
 * Whether this stage manages an endpoint service. Without spokes, with no list configured every
 * endpoint service of the account is managed (EC2 only ever shows the account's own); a tagged one
 * asks EC2, and is remembered for a minute. With spokes, a service no listing knows is looked for
 * in a listing begun after the question (it may be new), and one still unknown is remembered as
 * unmanaged for a minute; but while a spoke could not be listed it may be that spoke's, and the
 * answer is SpokeUnreachableError, not a guess.
 */
export async function isManagedService(serviceId: string): Promise<boolean> {
  if (!config().SPOKES.length) return isHubServiceManaged(serviceId);
  await listedRecently(LISTING_TTL_MS);
  let found = find(serviceId);
  if (!found && (unknown.get(serviceId) ?? 0) <= Date.now()) {
    await listedSince(Date.now());
    found = find(serviceId);
    if (!found && ![...listings.values()].some((listing) => listing.failure)) unknown.set(serviceId, Date.now() + LISTING_TTL_MS);
  }
  if (found) return managedIn(found.spoke, found.service);
  const unreachable = [...listings.values()].filter((listing) => listing.failure);
  if (unreachable.length) {
    throw new SpokeUnreachableError(
      `cannot tell whether ${serviceId} is managed: ${unreachable.map(({ spoke, failure }) => `${spokeKey(spoke)} (${failure?.code})`).join(', ')} could not be listed`,
    );
  }
  return false;
}

/** Where a service lives, as the last listing found it; the hub's own account and Region without spokes. */
export function locationOfService(serviceId: string): Spoke | undefined {
  if (!config().SPOKES.length) return hubSpoke();
  return find(serviceId)?.spoke;
}

/** Each spoke, with the error of its last listing if it failed. */
function spokeStatuses(): SpokeStatus[] {
  return fleetSpokes().map((spoke) => {
    const failure = listings.get(spokeKey(spoke))?.failure;
    return { spoke, ...(failure ? { failure } : {}) };
  });
}

// --- Without spokes: the hub's own account and Region -------------------------------------

async function hubServiceIds(): Promise<string[]> {
  const { MANAGED_SERVICE_IDS: configured, RECONCILE_TAGGED_SERVICES: withTagged } = config();
  const ids = new Set(configured.length ? configured : await listEndpointServiceIds());
  if (configured.length && withTagged) {
    const taggedIds = await listTaggedEndpointServiceIds(MANAGED_TAG);
    for (const id of taggedIds) ids.add(id);
    rememberTagged(taggedIds);
  }
  return [...ids].sort();
}

async function isHubServiceManaged(serviceId: string): Promise<boolean> {
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

// --- With spokes: every spoke listed ------------------------------------------------------

/** How long a listing of the spokes is used, and an unknown service id taken as unmanaged. */
const LISTING_TTL_MS = 60_000;

interface SpokeListing {
  spoke: Spoke;
  services: EndpointServiceDescription[];
  failure?: { code: string; message: string };
}

const listings = new Map<string, SpokeListing>();
/** Service ids no listing knew, until when they are taken as unmanaged. */
const unknown = new Map<string, number>();
/** When the last complete listing began. */
let listedFrom = 0;
let listing: Promise<void> | undefined;

/** Lists every spoke unless a listing begun within `maxAgeMs` (0: none) is complete. */
async function listedRecently(maxAgeMs: number): Promise<void> {
  if (maxAgeMs > 0 && Date.now() - listedFrom <= maxAgeMs) return;
  await listedSince(Date.now());
}

/** Waits for a complete listing begun at `time` or later, starting one when none is (one listing at a time). */
async function listedSince(time: number): Promise<void> {
  while (listedFrom < time) {
    listing ??= listSpokes().finally(() => {
      listing = undefined;
    });
    await listing;
  }
}

async function listSpokes(): Promise<void> {
  const startedAt = Date.now();
  await Promise.all(
    fleetSpokes().map(async (spoke) => {
      const key = spokeKey(spoke);
      try {
        listings.set(key, { spoke, services: await listEndpointServices(ec2ClientIn(spoke)) });
      } catch (error) {
        logger.error("could not list a spoke's endpoint services; its services are what it listed last", { spoke: key, error });
        listings.set(key, { spoke, services: listings.get(key)?.services ?? [], failure: describeError(error) });
      }
    }),
  );
  listedFrom = startedAt;
}

function find(serviceId: string): { spoke: Spoke; service: EndpointServiceDescription } | undefined {
  for (const { spoke, services } of listings.values()) {
    const service = services.find((candidate) => candidate.serviceId === serviceId);
    if (service) return { spoke, service };
  }
  return undefined;
}

/** Whether a service listed in a spoke is managed: the rule of the hub's own spoke, or of the others. */
function managedIn(spoke: Spoke, service: EndpointServiceDescription): boolean {
  const { MANAGED_SERVICE_IDS: configured, RECONCILE_TAGGED_SERVICES: withTagged } = config();
  const isTagged = service.tags[MANAGED_TAG.key] === MANAGED_TAG.value;
  if (configured.includes(service.serviceId)) return true;
  if (isSameSpoke(spoke, hubSpoke())) return !configured.length || (withTagged && isTagged);
  return isTagged;
}

/** Forgets the listings and tags (the local stack's reset: containers start cold). */
export function forgetManagedServices(): void {
  listings.clear();
  unknown.clear();
  listedFrom = 0;
  tagged.clear();
  serviceTags.clear();
}
