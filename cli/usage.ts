import { CliError } from './cli-error';

export const USAGE = `usage: vpce-gatekeeper [--api URL] [--region REGION] [--json] COMMAND

  pending [--service ID] [--provider-account ID] [--service-region R]
                                            connections waiting for an approver (of one service,
                                            or of the services in one account or Region)
  services                                  managed services, with connections by state
  show SERVICE_ID ENDPOINT_ID               one connection and its history
  accept SERVICE_ID ENDPOINT_ID --reason R  accept it (approvers only)
  reject SERVICE_ID ENDPOINT_ID --reason R  reject a request still waiting (approvers only)
  revoke SERVICE_ID ENDPOINT_ID --reason R  cut off an admitted connection (approvers only)
  policy get POLICY_ID                      a policy ('default' or a service id) and its version
  policy versions POLICY_ID                 who changed a policy, and when
  policy plan FILE                          what saving each policy in FILE would accept, reject, hold and revoke
  policy put FILE [--if-match VERSION] [--yes] [--force]
                                            write each policy in FILE (keyed by service id or 'default'):
                                            shows the plan and asks first; without a terminal to ask on,
                                            needs --yes (the plan is still printed); a service id this
                                            stage does not manage is refused unless you confirm or --force
  policy evaluate POLICY_ID --account ID --consumer-region R
                                            what the policy would decide, changing nothing
  login [--no-browser]                      sign in to an SSO stage (OpenID Connect in the browser)
  logout                                    forget the SSO sign-in to the API

--api defaults to $VPCE_GATEKEEPER_API, else http://127.0.0.1:3000 (the local stack).
A stage signed with IAM gets requests signed with SigV4 for execute-api, from the default AWS
credential chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...). A stage with
SSO (its /console/config.json says so) gets the token that \`login\` keeps for it, in
$VPCE_GATEKEEPER_CONFIG_DIR, else your configuration directory (~/.config/vpce-gatekeeper on Linux).`;

/** The positional arguments a command takes, or a usage error (exit 2). */
export function required(args: string[], ...names: string[]): string[] {
  if (args.length !== names.length) throw new CliError(`expected ${names.join(' ')}\n\n${USAGE}`, 2);
  return args;
}

