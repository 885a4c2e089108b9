import { randomBytes } from 'node:crypto';
import { QueryParams } from './form';
import type { QueryResponse } from '../http-io';
import { requestId as newRequestId } from './ids';
import { element, textElement, xmlDocument } from './xml';

const STS_XML_NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';
const ROLE_ARN = /^arn:aws:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]{1,64})$/;
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;

/** A role the local STS lets callers assume, and the external id its trust policy requires (if any). */
export interface AssumableRole {
  roleArn: string;
  externalId?: string;
}

/** Credentials the local STS issued. */
export interface StsSession {
  accountId: string;
  roleArn: string;
  sessionName: string;
  expiresAt: Date;
}

class StsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export interface LocalStsOptions {
  /**
   * Whether a role's trust refuses every caller now, for a request to STS in `region` (its SigV4
   * scope): the spokeUnavailable fault. AWS answers it as it answers a role that does not exist.
   */
  refuses?: (role: { accountId: string; roleArn: string }, region: string) => boolean;
}

/**
 * STS AssumeRole over the Query protocol (form in, XML out), for the roles it is
 * told about. The credentials it issues are temporary (ASIA…) and name the
 * role's account; the local Organizations API and EC2 accept them until they expire.
 */
export class LocalSts {
  private readonly roles = new Map<string, AssumableRole>();
  private readonly sessions = new Map<string, StsSession>();

  constructor(
    roles: AssumableRole[],
    private readonly options: LocalStsOptions = {},
  ) {
    for (const role of roles) this.roles.set(role.roleArn, role);
  }

  /** The session of temporary credentials, by access key id. */
  session(accessKeyId: string): StsSession | undefined {
    return this.sessions.get(accessKeyId);
  }

  /** Answers one request; `authorization` is its Authorization header, whose SigV4 scope names the Region called. */
  answer(body: string, authorization?: string): QueryResponse {
    const requestId = newRequestId();
    try {
      const params = QueryParams.parse(body);
      const action = params.get('Action');
      if (action !== 'AssumeRole') throw new StsError('InvalidAction', `Could not find operation ${action ?? '(none)'} for version 2011-06-15`);
      const region = /Credential=[^/,\s]+\/\d{8}\/([^/,\s]+)\/sts\/aws4_request/.exec(authorization ?? '')?.[1];
      if (!region) throw new StsError('MissingAuthenticationToken', 'Request is missing Authentication Token', 403);
      return { status: 200, xml: xmlDocument(this.assumeRole(params, requestId, region)), requestId };
    } catch (error) {
      if (!(error instanceof StsError)) throw error;
      const root = element(
        'ErrorResponse',
        [
          element('Error', [textElement('Type', 'Sender'), textElement('Code', error.code), textElement('Message', error.message)]),
          textElement('RequestId', requestId),
        ],
        { xmlns: STS_XML_NAMESPACE },
      );
      return { status: error.status, xml: xmlDocument(root), requestId };
    }
  }

  private assumeRole(params: QueryParams, requestId: string, region: string): string {
    const roleArn = params.get('RoleArn') ?? '';
    const sessionName = params.get('RoleSessionName') ?? '';
    if (!roleArn) throw new StsError('MissingParameter', "The request must contain the parameter 'RoleArn'.");
    if (!sessionName) throw new StsError('MissingParameter', "The request must contain the parameter 'RoleSessionName'.");
    if (!SESSION_NAME.test(sessionName)) throw new StsError('ValidationError', `1 validation error detected: Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint`);
    const parsed = ROLE_ARN.exec(roleArn);
    if (!parsed) throw new StsError('ValidationError', `${roleArn} is invalid`);
    const durationSeconds = Number(params.get('DurationSeconds') ?? 3600);
    if (!Number.isInteger(durationSeconds) || durationSeconds < 900 || durationSeconds > 43_200) {
      throw new StsError('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    }
    const accountId = parsed[1] ?? '';
    const role = this.roles.get(roleArn);
    if (
      !role ||
      (role.externalId !== undefined && role.externalId !== params.get('ExternalId')) ||
      this.options.refuses?.({ accountId, roleArn }, region)
    ) {
      // AWS says the same whether the role is missing or its trust policy refuses the caller.
      throw new StsError('AccessDenied', `User is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`, 403);
    }
    const roleName = parsed[2] ?? '';
    const accessKeyId = `ASIA${randomToken(16).toUpperCase()}`;
    const expiresAt = new Date(Date.now() + durationSeconds * 1000);
    this.sessions.set(accessKeyId, { accountId, roleArn, sessionName, expiresAt });
    return element(
      'AssumeRoleResponse',
      [
        element('AssumeRoleResult', [
          element('AssumedRoleUser', [
            textElement('Arn', `arn:aws:sts::${accountId}:assumed-role/${roleName}/${sessionName}`),
            textElement('AssumedRoleId', `AROA${randomToken(17).toUpperCase()}:${sessionName}`),
          ]),
          element('Credentials', [
            textElement('AccessKeyId', accessKeyId),
            textElement('SecretAccessKey', randomToken(40)),
            textElement('SessionToken', randomToken(120)),
            textElement('Expiration', expiresAt),
          ]),
          textElement('PackedPolicySize', 0),
        ]),
        element('ResponseMetadata', [textElement('RequestId', requestId)]),
      ],
      { xmlns: STS_XML_NAMESPACE },
    );
  }
}

function randomToken(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(length)].map((byte) => alphabet[byte % alphabet.length]).join('');
}
