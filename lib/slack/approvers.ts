import type { SlackWebApi } from './web-api';

/** How long a user group's members are trusted once read: a member removed in Slack may still decide for this long. */
export const GROUP_MEMBERS_TTL_MS = 60_000;
/** How long an interaction may spend listing a group's members: Slack wants an answer within 3 s. */
const LIST_BUDGET_MS = 1_000;

const groupMembers = new Map<string, { users: ReadonlySet<string>; readAt: number }>();

/** A Slack user may decide when slackApprovers names them, or a user group (S…) they are in. */
export async function isSlackApprover(userId: string, approvers: readonly string[], slack: SlackWebApi, now: number = Date.now()): Promise<boolean> {
  if (approvers.includes(userId)) return true;
  for (const groupId of approvers.filter((id) => id.startsWith('S'))) {
    if ((await membersOf(groupId, slack, now)).has(userId)) return true;
  }
  return false;
}

async function membersOf(groupId: string, slack: SlackWebApi, now: number): Promise<ReadonlySet<string>> {
  const cached = groupMembers.get(groupId);
  if (cached && now - cached.readAt < GROUP_MEMBERS_TTL_MS) return cached.users;
  const answer = await slack.call('usergroups.users.list', { usergroup: groupId }, { budgetMs: LIST_BUDGET_MS });
  const users = new Set(Array.isArray(answer.users) ? answer.users.filter((user): user is string => typeof user === 'string') : []);
  groupMembers.set(groupId, { users, readAt: now });
  return users;
}

/** Forgets the groups' members read so far (a new container). */
export function forgetGroupMembers(): void {
  groupMembers.clear();
}
