import { describeEndpointServices, listEndpointServices, listTaggedEndpointServices, type EndpointServiceDescription } from './aws/ec2-gateway';
import { ec2ClientIn, fleetSpokes, hubSpoke, isSameSpoke, spokeKey } from './aws/spoke-clients';
import { config } from './config';
import { MANAGED_TAG, type Spoke } from './domain/spokes';
import { POLICY_TAG } from './domain/policy';
import type { ManagedServices, PolicyTags, SpokeStatus } from './engine/ports';
import { describeError, SpokeUnreachableError } from './errors';
import { logger } from './logger';

/** The tag that puts an endpoint service under management (with RECONCILE_TAGGED_SERVICES). */
export { MANAGED_TAG };

/**
 * How long what EC2 said about a service (its tags) is trusted. Tagging a service brings it
 * under management, or under a named policy, within this long, on every entry point.
 */
const TAG_CACHE_MS = 60_000;
/** Services described in one DescribeVpcEndpointServiceConfigurations call. */
const DESCRIBE_BATCH = 100;

/** A service as EC2 described it: its tags, or undefined when EC2 does not know it. */
type Described = Record<string, string> | undefined;

/**
 * Without spokes: each service's description, one for everything that asks about the service
 * (whether it is managed, the policy its tag names, whether the stack may act on it), and until
 * when it is trusted. A read under way is shared by whoever asks meanwhile (invocations that share
 * an execution environment included), so that a service is described once, not once per asker;
 * a read that fails is forgotten at once, and every asker that shared it gets its error.
 */
const descriptions = new Map<string, { described: Promise<Described>; until: number }>();

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
 * The named policy each service's vpce-gatekeeper:policy tag names (`named`; a service without the
 * tag is absent), and the services whose tags could not be read, with the error (`unread`): those
 * are governed by neither a named policy nor the default until they are read (fail closed). With
 * spokes, from the listing; without, read from EC2 for the services not read within the minute.
 */
export async function policyTagsOf(serviceIds: readonly string[]): Promise<PolicyTags> {
  const { described, unread } = await tagsOf(serviceIds);
  const named = new Map<string, string>();
  for (const [serviceId, tags] of described) {
    const tag = tags[POLICY_TAG];
    if (tag !== undefined) named.set(serviceId, tag);
  }
  return { named, unread };
}

/**
 * The services among these that EC2 describes without the vpce-gatekeeper:managed=true tag: the
 * stack's roles act only on tagged services (serverless.yml, stack/spoke.yml), so a service named
 * in serviceIds without it can be read but not decided. A service EC2 does not describe, or whose
 * description failed, is left out.
 */
export async function untaggedOf(serviceIds: readonly string[]): Promise<string[]> {
  const { described } = await tagsOf(serviceIds);
  return serviceIds.filter((serviceId) => {
    const tags = described.get(serviceId);
    return tags !== undefined && tags[MANAGED_TAG.key] !== MANAGED_TAG.value;
  });
}

/**
 * Each service's tags as EC2 describes them (a service it does not describe is absent), and the
 * services whose description failed. A call that fails is made again for each of its services on
 * its own, so that one service EC2 fails on does not leave the others unread.
 */
async function tagsOf(serviceIds: readonly string[]): Promise<{ described: Map<string, Record<string, string>>; unread: Map<string, unknown> }> {
  const described = new Map<string, Record<string, string>>();
  const unread = new Map<string, unknown>();
  if (config().SPOKES.length) {
    await listedRecently(LISTING_TTL_MS);
    for (const serviceId of serviceIds) {
      const found = find(serviceId);
      if (found) described.set(serviceId, found.service.tags);
    }
    return { described, unread };
  }
  const read = describedNow(serviceIds);
  await Promise.all(
    serviceIds.map(async (serviceId) => {
      try {
        const tags = await read.get(serviceId);
        if (tags) described.set(serviceId, tags);
      } catch (error) {
        unread.set(serviceId, error);
      }
    }),
  );
  return { described, unread };
}

/**
 * Each service's description: from the cache while it is trusted (or being read), else read now,
 * DESCRIBE_BATCH services a call. A call that fails is made again for each of its services on its
 * own, so that one service EC2 fails on does not leave the others unread.
 */
function describedNow(serviceIds: readonly string[]): Map<string, Promise<Described>> {
  const now = Date.now();
  const answers = new Map<string, Promise<Described>>();
  const stale: string[] = [];
  for (const serviceId of new Set(serviceIds)) {
    const cached = descriptions.get(serviceId);
    if (cached && cached.until > now) answers.set(serviceId, cached.described);
    else stale.push(serviceId);
  }
  for (let i = 0; i < stale.length; i += DESCRIBE_BATCH) {
    const ids = stale.slice(i, i + DESCRIBE_BATCH);
    const batch = describeBatch(ids);
    for (const serviceId of ids) {
      const described = batch.then((read) => {
        const answer = read.get(serviceId);
        if (answer && 'error' in answer) throw answer.error;
        return answer?.tags;
      });
      // Trusted from the start of the read, for TAG_CACHE_MS; meanwhile shared as it is.
      const entry = { described, until: Number.POSITIVE_INFINITY };
      descriptions.set(serviceId, entry);
      described.then(
        () => {
          entry.until = now + TAG_CACHE_MS;
        },
        () => {
          if (descriptions.get(serviceId) === entry) descriptions.delete(serviceId);
        },
      );
      answers.set(serviceId, described);
    }
  }
  return answers;
}

/** Describes services in one call, or, when it fails or leaves some out, each on its own: each one's tags (absent: EC2 does not know it) or error. */
async function describeBatch(ids: readonly string[]): Promise<Map<string, { tags: Record<string, string> } | { error: unknown }>> {
  const read = new Map<string, { tags: Record<string, string> } | { error: unknown }>();
  const readEach = async () => {
    for (const serviceId of ids) {
      if (read.has(serviceId)) continue;
      try {
        for (const service of await describeEndpointServices([serviceId])) read.set(service.serviceId, { tags: service.tags });
      } catch (error) {
        read.set(serviceId, { error });
      }
    }
  };
  try {
    for (const service of await describeEndpointServices([...ids])) read.set(service.serviceId, { tags: service.tags });
    // EC2 refuses a whole call naming a service it does not know: then each is read on its own.
    if (read.size < ids.length && ids.length > 1) await readEach();
  } catch (error) {
    if (ids.length === 1) read.set(ids[0] as string, { error });
    else await readEach();
  }
  return read;
}

/** Services a listing described (with their tags): trusted as if each had been described now. */
function remember(services: readonly EndpointServiceDescription[]): void {
  const until = Date.now() + TAG_CACHE_MS;
  for (const { serviceId, tags } of services) descriptions.set(serviceId, { described: Promise.resolve(tags), until });
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
  if (!configured.length) {
    const services = await listEndpointServices();
    remember(services);
    return services.map(({ serviceId }) => serviceId).sort();
  }
  const ids = new Set(configured);
  if (withTagged) {
    const taggedServices = await listTaggedEndpointServices(MANAGED_TAG);
    remember(taggedServices);
    for (const { serviceId } of taggedServices) ids.add(serviceId);
  }
  return [...ids].sort();
}

async function isHubServiceManaged(serviceId: string): Promise<boolean> {
  const { MANAGED_SERVICE_IDS: configured, RECONCILE_TAGGED_SERVICES: withTagged } = config();
  if (!configured.length || configured.includes(serviceId)) return true;
  if (!withTagged) return false;
  const tags = await describedNow([serviceId]).get(serviceId);
  return tags?.[MANAGED_TAG.key] === MANAGED_TAG.value;
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
  descriptions.clear();
}
