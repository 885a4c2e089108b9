import { afterEach, describe, expect, it, vi } from 'vitest';

// Organizations has one endpoint per partition, not one per Region: the client must reach its
// own partition's (a function in aws-cn or aws-us-gov cannot sign for us-east-1), and sign for
// that endpoint's Region. Each case loads the gateway afresh, as a cold start in that Region.

const original = process.env.AWS_REGION;

afterEach(() => {
  process.env.AWS_REGION = original;
  vi.resetModules();
});

describe('the Organizations client', () => {
  it.each([
    ['eu-west-1', 'https://organizations.us-east-1.amazonaws.com', 'us-east-1'],
    ['us-east-1', 'https://organizations.us-east-1.amazonaws.com', 'us-east-1'],
    ['cn-north-1', 'https://organizations.cn-northwest-1.amazonaws.com.cn', 'cn-northwest-1'],
    ['us-gov-east-1', 'https://organizations.us-gov-west-1.amazonaws.com', 'us-gov-west-1'],
  ])('in %s reaches %s, signing for %s', async (functionRegion, endpoint, signingRegion) => {
    process.env.AWS_REGION = functionRegion;
    vi.resetModules();
    const { organizationsClient } = await import('../../lib/aws/organizations-gateway');

    const client = await organizationsClient();
    const resolved = await client.config.endpointProvider({ Region: await client.config.region(), UseFIPS: false, UseDualStack: false });

    expect(resolved.url.origin).toBe(endpoint);
    expect(resolved.properties?.authSchemes).toEqual([expect.objectContaining({ name: 'sigv4', signingRegion })]);
  });
});
