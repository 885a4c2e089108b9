import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/**
 * The single-table layout. This module and the gateways beside it are the only
 * code that knows about pk/sk or raw attribute names.
 *
 *   connection     pk CONN#<serviceId>     sk EP#<endpointId>
 *                  gsi1pk STATE#<state>    gsi1sk <createdAt>#<serviceId>#<endpointId>
 *                  byServiceState: pk and the record's own `state` attribute (keys only)
 *   policy version pk POLICY#<serviceId|default>  sk V#<version, zero-padded>
 *   admission      pk ADMISSION#<serviceId>  sk ACCOUNT#<accountId>  (endpoints holding the account's places)
 *   membership     pk ORGMEMBER#<accountId> sk MEMBERSHIP               (expires: TTL)
 *   sharing        pk SHARING#<serviceId>   sk PRINCIPALS
 *   slack message  pk SLACKMSG#<serviceId>#<endpointId>  sk MESSAGE   (the Slack message about a connection)
 *   slack request  pk SLACKREQ#<signature>  sk SEEN                   (expires: TTL; replay protection)
 */
export const BY_STATE_INDEX = 'byState';
/**
 * One service's connections in one state, so that a state filter is a key
 * condition rather than a filter applied after Limit (which could read a whole
 * partition for one page). Keys only: a page reads its records with BatchGet.
 */
export const BY_SERVICE_STATE_INDEX = 'byServiceState';
export const TTL_ATTRIBUTE = 'expiresAt';

export const keys = {
  connection: (serviceId: string, endpointId: string) => ({ pk: `CONN#${serviceId}`, sk: `EP#${endpointId}` }),
  connectionsOfService: (serviceId: string) => ({ pk: `CONN#${serviceId}` }),
  byState: (state: string) => ({ gsi1pk: `STATE#${state}` }),
  byStateSort: (createdAt: string, serviceId: string, endpointId: string) => ({
    gsi1sk: `${createdAt}#${serviceId}#${endpointId}`,
  }),
  policyVersion: (policyId: string, version: number) => ({
    pk: `POLICY#${policyId}`,
    sk: `V#${String(version).padStart(10, '0')}`,
  }),
  policyVersions: (policyId: string) => ({ pk: `POLICY#${policyId}` }),
  /** An account's places under maxEndpointsPerAccount on one service: admissions serialise on this item. */
  admission: (serviceId: string, accountId: string) => ({ pk: `ADMISSION#${serviceId}`, sk: `ACCOUNT#${accountId}` }),
  membership: (accountId: string) => ({ pk: `ORGMEMBER#${accountId}`, sk: 'MEMBERSHIP' }),
  sharing: (serviceId: string) => ({ pk: `SHARING#${serviceId}`, sk: 'PRINCIPALS' }),
  /** The Slack message that announces a connection; each its own partition, as each is written on its own. */
  slackMessage: (serviceId: string, endpointId: string) => ({ pk: `SLACKMSG#${serviceId}#${endpointId}`, sk: 'MESSAGE' }),
  /** A Slack request already handled, by its signature: a second one with the same signature is a replay. */
  slackRequest: (signature: string) => ({ pk: `SLACKREQ#${signature}`, sk: 'SEEN' }),
};

/**
 * The condition of a versioned write: the item must not exist yet (no version
 * read), or must still be at the version that was read.
 */
export function versionCondition(expectedVersion: number | undefined) {
  return expectedVersion === undefined
    ? { ConditionExpression: 'attribute_not_exists(pk)' }
    : { ConditionExpression: 'version = :expected', ExpressionAttributeValues: { ':expected': expectedVersion } };
}

/** The table as CloudFormation declares it (serverless.yml), for creating it locally. */
export function tableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
      { AttributeName: 'gsi1pk', AttributeType: 'S' },
      { AttributeName: 'gsi1sk', AttributeType: 'S' },
      { AttributeName: 'state', AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: BY_STATE_INDEX,
        KeySchema: [
          { AttributeName: 'gsi1pk', KeyType: 'HASH' },
          { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: BY_SERVICE_STATE_INDEX,
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'state', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  };
}
