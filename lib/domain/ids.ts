/**
 * The formats of the ids this product handles, defined once: the policy schema,
 * the API's input validation, the configuration, the gateways and the local
 * simulators all import them from here. Each pattern comes with the sentence a
 * validation error gives when a value does not match it.
 */

/** A 12-digit AWS account id. */
export const ACCOUNT_ID = /^\d{12}$/;
export const ACCOUNT_ID_MESSAGE = 'must be a 12-digit AWS account id';

/** An endpoint service id, as EC2 writes them (vpce-svc- and 8 or 17 hex digits). */
export const SERVICE_ID = /^vpce-svc-[0-9a-f]{8,17}$/;
export const SERVICE_ID_MESSAGE = 'must be an endpoint service id such as vpce-svc-0123456789abcdef0';

/** A VPC endpoint id (vpce- and 8 or 17 hex digits). */
export const ENDPOINT_ID = /^vpce-[0-9a-f]{8,17}$/;
export const ENDPOINT_ID_MESSAGE = 'must be a VPC endpoint id such as vpce-0123456789abcdef0';

/** An AWS Region name such as us-east-1 or us-gov-west-1. */
export const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
export const REGION_MESSAGE = 'must be an AWS region such as us-east-1';

/** An AWS Organizations organization id. */
export const ORGANIZATION_ID = /^o-[a-z0-9]{10,32}$/;
export const ORGANIZATION_ID_MESSAGE = 'must be an organization id such as o-a1b2c3d4e5';

/** An AWS Organizations organizational unit id. */
export const ORGANIZATIONAL_UNIT_ID = /^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$/;
export const ORGANIZATIONAL_UNIT_ID_MESSAGE = 'must be an organizational unit id such as ou-ab12-cdef3456';

/** An AWS Organizations root id. */
export const ROOT_ID = /^r-[0-9a-z]{4,32}$/;
