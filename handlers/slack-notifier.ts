import * as v from '../lib/validation';
import { config, slackSettings } from '../lib/config';
import { lambdaHandler } from '../lib/lambda';
import { logger } from '../lib/logger';
import type { CardEvent } from '../lib/slack/message-card';
import { slackApi } from '../lib/slack/app';
import { showEvent } from '../lib/slack/messages';
import { ValidationError } from '../lib/errors';

// Fail at cold start, naming the variable, rather than on the first event.
config();
slackSettings();

/** Slack calls may wait out its rate limits for this long: well inside the function's 30 s. */
const SLACK_BUDGET_MS = 20_000;

/** SNS's Lambda event: one record per invocation, its Message the event as JSON. */
const snsEventSchema = v.object({
  Records: v.pipe(v.array(v.object({ EventSource: v.literal('aws:sns'), Sns: v.object({ MessageId: v.string(), Message: v.string() }) })), v.minLength(1)),
});

const eventSchema = v.looseObject({
  eventType: v.string(),
  serviceId: v.string(),
  endpointId: v.optional(v.string()),
  sequence: v.optional(v.number()),
});

/**
 * Subscribed to the decisions topic (filter policy on eventType): posts each
 * approval-needed request to the Slack channel and updates its message on every
 * later event about it. Throws when Slack or the table could not be told, so
 * that Lambda retries the event.
 */
export const handler = lambdaHandler(async (event: unknown): Promise<void> => {
  const parsed = v.safeParse(snsEventSchema, event);
  if (!parsed.success) throw new ValidationError('not an SNS event', v.problems(parsed.issues));
  const { channel } = slackSettings();
  for (const record of parsed.output.Records) {
    const message = parseMessage(record.Sns.Message);
    if (!message) {
      logger.warn('SNS message is not a connection event; ignored', { messageId: record.Sns.MessageId });
      continue;
    }
    const shown = await showEvent(message, { slack: slackApi(), channel, slackBudgetMs: SLACK_BUDGET_MS });
    logger.info('event shown in Slack', { eventType: message.eventType, serviceId: message.serviceId, endpointId: message.endpointId, ...shown });
  }
});

function parseMessage(text: string): CardEvent | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = v.safeParse(eventSchema, json);
  return parsed.success && parsed.output.endpointId !== undefined && parsed.output.sequence !== undefined ? (json as CardEvent) : undefined;
}
