import { Logger } from '@aws-lambda-powertools/logger';

/** The one structured logger. Level from POWERTOOLS_LOG_LEVEL (default INFO). */
export const logger = new Logger({ serviceName: 'vpce-gatekeeper' });
