import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseNotification, recordReflects } from '../../lib/domain/notification';
import type { ConnectionRecord } from '../../lib/domain/connection';
import { ENDPOINT_ID, SERVICE_ID } from '../../lib/domain/ids';

const SERVICE = 'vpce-svc-0a1b2c3d4e5f60718';
const ENDPOINT = 'vpce-0123456789abcdef0';

const hex = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${min},${max}}$`));
const serviceId = hex(8, 17).map((digits) => `vpce-svc-${digits}`);
const endpointId = hex(8, 17).map((digits) => `vpce-${digits}`);
/** Messages shaped like notifications, with real and near-miss ids among the noise. */
const messageWithIds = fc
  .dictionary(
    fc.constantFrom('serviceId', 'vpcEndpointId', 'VPC Endpoint ID', 'endpoint_id', 'state', 'note', 'Message'),
    fc.oneof(serviceId, endpointId, hex(1, 30).map((digits) => `vpce-svc-${digits}`), hex(1, 30).map((digits) => `vpce-con-${digits}`), fc.string()),
  )
  .map((document) => JSON.stringify(document));

function messageOf(fixture: string): string {
  const event = JSON.parse(readFileSync(new URL(`../../events/${fixture}`, import.meta.url), 'utf8'));
  return event.Records[0].body;
}

describe('parseNotification', () => {
  it.each(['sqs-connect.json', 'sqs-connect-pascal-case.json', 'sqs-connect-events-list.json'])(
    'finds the service, endpoint, event and state in %s',
    (fixture) => {
      expect(parseNotification(messageOf(fixture))).toEqual({
        serviceIds: [SERVICE],
        endpointIds: [ENDPOINT],
        eventType: 'Connect',
        state: 'pendingAcceptance',
      });
    },
  );

  it('reads Delete and Accept events', () => {
    expect(parseNotification(messageOf('sqs-delete.json'))).toMatchObject({ eventType: 'Delete', state: 'deleted' });
    expect(parseNotification(messageOf('sqs-accept.json'))).toMatchObject({ eventType: 'Accept', state: 'available' });
  });

  it('names a service but no endpoint when only the service is given', () => {
    expect(parseNotification(messageOf('sqs-service-only.json'))).toMatchObject({ serviceIds: [SERVICE], endpointIds: [] });
  });

  it('finds nothing in a message with nothing recognizable', () => {
    expect(parseNotification(messageOf('sqs-unrecognized.json'))).toMatchObject({ serviceIds: [], endpointIds: [] });
  });

  it('picks ids out of a message that is not JSON', () => {
    expect(parseNotification(messageOf('sqs-plain-text.json'))).toEqual({
      serviceIds: [SERVICE],
      endpointIds: [ENDPOINT],
      eventType: undefined,
      state: undefined,
    });
  });

  it('does not mistake a connection id or service id for an endpoint id', () => {
    const parsed = parseNotification(`{"note": "vpce-con-0123456789abcdef0 on ${SERVICE}"}`);
    expect(parsed.endpointIds).toEqual([]);
    expect(parsed.serviceIds).toEqual([SERVICE]);
  });

  it('finds ids in a message wrapped in another JSON string', () => {
    const inner = JSON.stringify({ serviceId: SERVICE, vpcEndpointId: ENDPOINT, eventType: 'reject' });
    expect(parseNotification(JSON.stringify({ Message: inner }))).toMatchObject({
      serviceIds: [SERVICE],
      endpointIds: [ENDPOINT],
      eventType: 'Reject',
    });
  });

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.json(), fc.jsonValue().map((value) => JSON.stringify(value))), (text) => {
        parseNotification(text);
      }),
      { numRuns: 1000 },
    );
  }, 30_000);

  it('never invents an id: every id it returns is well formed and occurs in the message', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), messageWithIds), (text) => {
        const { serviceIds, endpointIds } = parseNotification(text);
        for (const id of serviceIds) {
          expect(id).toMatch(SERVICE_ID);
          expect(text).toContain(id);
        }
        for (const id of endpointIds) {
          expect(id).toMatch(ENDPOINT_ID);
          expect(text).toContain(id);
        }
      }),
      { numRuns: 1000 },
    );
  }, 30_000);

  it('finds a well-formed id wherever it sits: any field, any nesting, in JSON or plain text', () => {
    fc.assert(
      fc.property(serviceId, endpointId, fc.string(), fc.string(), fc.nat({ max: 5 }), fc.boolean(), (service, endpoint, key, filler, depth, plain) => {
        const sentence = `${filler.replace(/[0-9a-z-]+$/, '')} ${service} and ${endpoint} .`;
        let value: unknown = { [key]: sentence };
        for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { [`level${i}`]: value };
        const text = plain ? sentence : JSON.stringify(value);

        const parsed = parseNotification(text);

        expect(parsed.serviceIds).toContain(service);
        expect(parsed.endpointIds).toContain(endpoint);
      }),
      { numRuns: 1000 },
    );
  }, 30_000);
});

describe('recordReflects', () => {
  const now = new Date('2026-11-23T12:00:00Z');
  const base: ConnectionRecord = {
    serviceId: SERVICE,
    endpointId: ENDPOINT,
    ownerAccountId: '111122223333',
    region: 'us-east-1',
    state: 'pendingAcceptance',
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    version: 1,
    history: [],
  };
  const accepted = { outcome: 'accept', acted: true, rule: 'allow:a', reason: 'r', decidedBy: 'policy', decidedAt: now.toISOString() } as const;
  const claim = (leaseUntil: string) => ({
    outcome: 'accept' as const,
    from: 'pendingAcceptance' as const,
    rule: 'allow:a',
    reason: 'r',
    decidedBy: 'policy',
    token: 't',
    leaseUntil,
    status: 'acting' as const,
  });

  it('sends an event about a connection never seen to EC2', () => {
    expect(recordReflects(undefined, 'Connect', now)).toBe(false);
  });

  it('knows the Accept that follows its own recorded accept', () => {
    expect(recordReflects({ ...base, state: 'pending', decision: accepted }, 'Accept', now)).toBe(true);
    expect(recordReflects(base, 'Accept', now)).toBe(false);
  });

  it('knows the Accept of an accept still being recorded, but not once the claim has lapsed', () => {
    expect(recordReflects({ ...base, claim: claim('2026-11-23T12:00:30Z') }, 'Accept', now)).toBe(true);
    expect(recordReflects({ ...base, claim: claim('2026-11-23T11:59:00Z') }, 'Accept', now)).toBe(false);
    expect(recordReflects({ ...base, claim: claim('2026-11-23T12:00:30Z') }, 'Delete', now)).toBe(false);
  });

  it('knows a Connect once the connection is decided or held, and a Delete once it is deleted', () => {
    expect(recordReflects({ ...base, decision: { ...accepted, outcome: 'hold', acted: false } }, 'Connect', now)).toBe(true);
    expect(recordReflects(base, 'Connect', now)).toBe(false);
    expect(recordReflects({ ...base, state: 'deleted' }, 'Delete', now)).toBe(true);
    expect(recordReflects({ ...base, state: 'available' }, 'Delete', now)).toBe(false);
  });
});
