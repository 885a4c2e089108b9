import { describe, expect, it } from 'vitest';
import { QueryParams } from '../../../local/aws/form';

describe('Query protocol parameters', () => {
  it('reads indexed lists in numeric order', () => {
    const body = Array.from({ length: 11 }, (_, i) => `VpcEndpointId.${11 - i}=vpce-${11 - i}`).join('&');

    const ids = QueryParams.parse(`Action=AcceptVpcEndpointConnections&${body}`).list('VpcEndpointId');

    expect(ids).toEqual(Array.from({ length: 11 }, (_, i) => `vpce-${i + 1}`));
  });

  it('reads EC2 filters and SNS message attribute entries as structures', () => {
    const params = QueryParams.parse(
      [
        'Filter.2.Name=vpc-endpoint-state',
        'Filter.2.Value.1=available',
        'Filter.1.Name=service-id',
        'Filter.1.Value.2=vpce-svc-b',
        'Filter.1.Value.1=vpce-svc-a',
        'MessageAttributes.entry.1.Name=eventType',
        'MessageAttributes.entry.1.Value.DataType=String',
        'MessageAttributes.entry.1.Value.StringValue=accepted%20now',
      ].join('&'),
    );

    const filters = params.structures('Filter').map((filter) => [filter.get('Name'), filter.list('Value')]);
    const [attribute] = params.structures('MessageAttributes.entry');

    expect(filters).toEqual([
      ['service-id', ['vpce-svc-a', 'vpce-svc-b']],
      ['vpc-endpoint-state', ['available']],
    ]);
    expect([attribute?.get('Name'), attribute?.get('Value.DataType'), attribute?.get('Value.StringValue')]).toEqual([
      'eventType',
      'String',
      'accepted now',
    ]);
  });
});
