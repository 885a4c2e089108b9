import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseNotification } from '../../lib/domain/notification';

const SERVICE = 'vpce-svc-0a1b2c3d4e5f60718';
const ENDPOINT = 'vpce-0123456789abcdef0';

function messageOf(fixture: string): string {
  const event = JSON.parse(readFileSync(new URL(`../../events/${fixture}`, import.meta.url), 'utf8'));
  return event.Records[0].Sns.Message;
}

describe('parseNotification', () => {
  it.each(['sns-connect.json', 'sns-connect-pascal-case.json', 'sns-connect-events-list.json'])(
    'finds the service, endpoint, event and state in %s',
    (fixture) => {
      expect(parseNotification(messageOf(fixture))).toEqual({
        serviceIds: [SERVICE],
        endpointIds: [ENDPOINT],
        eventType: 'Connect',
        state: 'pendingAcceptance',
        structured: true,
      });
    },
  );

  it('reads Delete and Accept events', () => {
    expect(parseNotification(messageOf('sns-delete.json'))).toMatchObject({ eventType: 'Delete', state: 'deleted' });
    expect(parseNotification(messageOf('sns-accept.json'))).toMatchObject({ eventType: 'Accept', state: 'available' });
  });

  it('names a service but no endpoint when only the service is given', () => {
    expect(parseNotification(messageOf('sns-service-only.json'))).toMatchObject({ serviceIds: [SERVICE], endpointIds: [] });
  });

  it('finds nothing in a message with nothing recognizable', () => {
    expect(parseNotification(messageOf('sns-unrecognized.json'))).toMatchObject({ serviceIds: [], endpointIds: [] });
  });

  it('picks ids out of a message that is not JSON', () => {
    expect(parseNotification(messageOf('sns-plain-text.json'))).toEqual({
      serviceIds: [SERVICE],
      endpointIds: [ENDPOINT],
      eventType: undefined,
      state: undefined,
      structured: false,
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
    for (const text of ['', 'null', '[]', '{', '"just a string"', '{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{}}}}}}}}}}']) {
      expect(parseNotification(text).endpointIds).toEqual([]);
    }
  });
});
