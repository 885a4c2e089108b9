import { useState } from 'preact/hooks';
import { ApiError, call, STATES, type Connection, type Me, type ServiceSummary, type Session } from './api';
import { ErrorNote, Id, Note, Shown, messageOf, useLoad, when } from './ui';

interface Page {
  connections: Connection[];
  nextCursor: string | null;
}

function useServices(session: Session) {
  return useLoad(async () => (await call<{ services: ServiceSummary[] }>(session, 'GET', '/services')).body.services, [session]);
}

/** The queue: connections in one state (pending by default), of every service or one, a page at a time. */
export function Queue({ session, query }: { session: Session; query: URLSearchParams }) {
  const state = query.get('state') ?? 'pendingAcceptance';
  const serviceId = query.get('service') ?? '';
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const services = useServices(session);
  const page = useLoad(
    async () => (await call<Page>(session, 'GET', '/connections', { query: { state, serviceId, limit: '25', cursor } })).body,
    [session, state, serviceId, cursor],
  );
  const filter = (changes: Record<string, string>) => {
    const next = new URLSearchParams({ state, service: serviceId, ...changes });
    setCursors([undefined]);
    location.hash = `#/queue?${next}`;
  };
  return (
    <section>
      <h1>Queue</h1>
      <div class="filters">
        <label>
          Service
          <select name="service" value={serviceId} onChange={(e) => filter({ service: e.currentTarget.value })}>
            <option value="">every service</option>
            {services.value?.map((s) => <option value={s.serviceId}>{s.serviceId}</option>)}
          </select>
        </label>
        <label>
          State
          <select name="state" value={state} onChange={(e) => filter({ state: e.currentTarget.value })}>
            {STATES.map((s) => <option value={s}>{s}</option>)}
          </select>
        </label>
        <button onClick={page.reload}>Refresh</button>
      </div>
      {page.error && <ErrorNote message={page.error} />}
      {page.value && (
        <>
          {page.value.connections.length === 0 ? (
            <p class="empty">{state === 'pendingAcceptance' ? 'Nothing is waiting for an approver.' : `No connection is ${state}.`}</p>
          ) : (
            <table class="list" data-testid="queue">
              <thead>
                <tr><th>Endpoint</th><th>Service</th><th>Account</th><th>Region</th><th>Since</th><th>Why</th></tr>
              </thead>
              <tbody>
                {page.value.connections.map((c) => (
                  <tr>
                    <td data-label="Endpoint"><a href={`#/connection/${c.serviceId}/${c.endpointId}`}><Id>{c.endpointId}</Id></a></td>
                    <td data-label="Service"><Id>{c.serviceId}</Id></td>
                    <td data-label="Account"><Id>{c.ownerAccountId}</Id></td>
                    <td data-label="Region"><Id>{c.region}</Id></td>
                    <td data-label="Since">{when(c.createdAt)}</td>
                    <td data-label="Why" class="why"><Shown text={c.decision?.reason} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <div class="pager">
            <button disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>Previous</button>
            <span>page {cursors.length}</span>
            <button disabled={!page.value.nextCursor} onClick={() => setCursors([...cursors, page.value?.nextCursor ?? undefined])}>Next</button>
          </div>
        </>
      )}
    </section>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

/** The managed services, with their connections counted by state and the policy that governs each. */
export function Services({ session }: { session: Session }) {
  const services = useServices(session);
  const shown = ['pendingAcceptance', 'pending', 'available', 'rejected', 'deleted', 'failed'] as const;
  return (
    <section>
      <h1>Services</h1>
      {services.error && <ErrorNote message={services.error} />}
      {services.value && (
        <table class="list" data-testid="services">
          <thead>
            <tr><th>Service</th><th>In</th>{shown.map((s) => <th class="num">{s}</th>)}<th>Policy</th></tr>
          </thead>
          <tbody>
            {services.value.map((s) => (
              <tr>
                <td data-label="Service"><Id>{s.serviceId}</Id></td>
                <td data-label="In">{s.providerAccountId && <><Id>{s.providerAccountId}</Id> {s.serviceRegion}</>}</td>
                {shown.map((state) => (
                  <td class="num" data-label={state}>
                    {s.connections[state] ? <a href={`#/queue?service=${s.serviceId}&state=${state}`}>{s.connections[state]}</a> : 0}
                  </td>
                ))}
                <td data-label="Policy" data-testid="policy-of-service"><PolicyOf service={s} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Which policy governs a service: its own or the default, its version, and whether it still validates. */
function PolicyOf({ service }: { service: ServiceSummary }) {
  const { policy, serviceId } = service;
  if (!policy) return <a href={`#/policies/${serviceId}`}>none: every request is held</a>;
  const own = policy.policyId === serviceId;
  return (
    <>
      <a href={`#/policies/${policy.policyId}`}>
        {own ? 'its own' : <Id>{policy.policyId}</Id>}, version {policy.version}
      </a>
      {!policy.valid && <span class="stale"> (no longer validates: nothing is decided by it)</span>}
      {!own && <> · <a href={`#/policies/${serviceId}`} class="hint">give it its own</a></>}
    </>
  );
}

type Action = 'accept' | 'reject' | 'revoke';

/** The API route behind each action: reject acts on a waiting request, revoke on an admitted (pending or available) connection. */
const ROUTE: Record<Action, string> = { accept: 'accept', reject: 'reject', revoke: 'revoke' };

const CONSEQUENCE: Record<Action, (c: Connection) => string> = {
  accept: (c) => `EC2 accepts endpoint ${c.endpointId} of account ${c.ownerAccountId} on ${c.serviceId}: its traffic flows once the connection is available.`,
  reject: (c) => `EC2 rejects the request of account ${c.ownerAccountId} (endpoint ${c.endpointId}); to ask again, the consumer must create a new endpoint.`,
  revoke: (c) => `EC2 rejects the ${c.state} connection of account ${c.ownerAccountId} (endpoint ${c.endpointId}): the consumer loses access through it at once.`,
};

/** One connection: its record, the decision and why, the history as a timeline, and (for approvers) what can be done. */
export function ConnectionPage({ session, me, serviceId, endpointId }: { session: Session; me: Me; serviceId: string; endpointId: string }) {
  const record = useLoad(
    async () => (await call<Connection>(session, 'GET', `/services/${serviceId}/connections/${endpointId}`)).body,
    [session, serviceId, endpointId],
  );
  const [action, setAction] = useState<Action>();
  const [outcome, setOutcome] = useState<{ kind: 'ok' | 'error' | 'warn'; text: string }>();
  const c = record.value;
  const actions: Action[] = !c || me.role !== 'approver' ? [] : c.state === 'pendingAcceptance' ? ['accept', 'reject'] : c.state === 'available' || c.state === 'pending' ? ['revoke'] : [];

  const done = (text: string, kind: 'ok' | 'error' | 'warn') => {
    setAction(undefined);
    setOutcome({ kind, text });
    record.reload();
  };

  return (
    <section>
      <p><a href="#/queue">← Queue</a></p>
      <h1><Id>{endpointId}</Id></h1>
      {record.error && <ErrorNote message={record.error} />}
      {outcome && <Note kind={outcome.kind}><span data-testid="outcome"><Shown text={outcome.text} /></span></Note>}
      {c && (
        <>
          <div class="columns">
            <dl class="record card">
              <dt>Service</dt><dd><Id>{c.serviceId}</Id></dd>
              {c.providerAccountId && <><dt>Service in</dt><dd data-testid="service-in"><Id>{c.providerAccountId}</Id> {c.serviceRegion}</dd></>}
              <dt>Account</dt><dd><Id>{c.ownerAccountId}</Id></dd>
              <dt>Region</dt><dd>{c.region}</dd>
              <dt>State</dt><dd><StateBadge state={c.state} /></dd>
              <dt>First seen</dt><dd>{when(c.createdAt)}</dd>
              <dt>Updated</dt><dd>{when(c.updatedAt)}</dd>
            </dl>
            <div class="card decision" data-testid="decision">
              <h2>Decision</h2>
              {c.decision ? (
                <>
                  <p class={`outcome ${c.decision.outcome}`}>
                    {c.decision.outcome}
                    {c.decision.acted ? '' : ' (nothing done in EC2)'}
                  </p>
                  <p>Rule <code><Shown text={c.decision.rule} /></code>, by <Shown text={c.decision.decidedBy} />, {when(c.decision.decidedAt)}</p>
                  <p class="reason"><Shown text={c.decision.reason} /></p>
                </>
              ) : (
                <p>No decision yet.</p>
              )}
              {c.pendingAction && (
                <Note kind="warn">
                  {c.pendingAction.status === 'failed' ? 'A failed action' : 'An action in progress'}: {c.pendingAction.outcome} by <Shown text={c.pendingAction.decidedBy} /> (<Shown text={c.pendingAction.reason} />)
                </Note>
              )}
              {actions.length > 0 && (
                <div class="actions">
                  {actions.map((a) => (
                    <button class={a === 'accept' ? 'primary' : 'danger'} onClick={() => { setOutcome(undefined); setAction(a); }}>
                      {a[0]?.toUpperCase()}{a.slice(1)}…
                    </button>
                  ))}
                </div>
              )}
            </div>
          </div>
          {action && <ActionDialog session={session} connection={c} action={action} onCancel={() => setAction(undefined)} onDone={done} />}
          <h2>History</h2>
          <ol class="timeline" data-testid="history">
            {c.history.map(({ at, type, ...detail }) => (
              <li>
                <time>{when(at)}</time> <strong>{type}</strong> <span class="detail"><Shown text={describe(type, detail)} /></span>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}

function describe(type: string, d: Record<string, unknown>): string {
  switch (type) {
    case 'first-seen':
      return `${String(d.state)} (${String(d.source)})`;
    case 'state-changed':
      return `${String(d.from)} → ${String(d.to)} (${String(d.source)})`;
    case 'decision':
      return `${String(d.outcome)}${d.acted ? '' : ', nothing done'} by ${String(d.decidedBy)} (${String(d.rule)}): ${String(d.reason)}`;
    case 'action-failed':
      return `${String(d.outcome)} failed: ${String(d.code)} ${String(d.message)}`;
    default:
      return Object.entries(d).map(([k, v]) => `${k}=${String(v)}`).join(' ');
  }
}

/** Asks for the reason, says what will happen, and carries the action out; a lost race is explained. */
function ActionDialog({ session, connection, action, onCancel, onDone }: {
  session: Session;
  connection: Connection;
  action: Action;
  onCancel: () => void;
  onDone: (text: string, kind: 'ok' | 'error' | 'warn') => void;
}) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const path = `/services/${connection.serviceId}/connections/${connection.endpointId}`;

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    try {
      const answer = await call<Connection>(session, 'POST', `${path}/${ROUTE[action]}`, { body: { reason } });
      onDone(`${past(action)} ${connection.endpointId}: EC2 now shows it ${answer.body.state}.`, 'ok');
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        onDone(await explainConflict(session, path, action, error), 'warn');
      } else {
        onDone(`Could not ${action}: ${messageOf(error)}`, 'error');
      }
    }
  };

  return (
    <form class="card dialog" role="dialog" aria-label={`${action} ${connection.endpointId}`} onSubmit={submit}>
      <h2>{action[0]?.toUpperCase()}{action.slice(1)} {connection.endpointId}?</h2>
      <p class="consequence">{CONSEQUENCE[action](connection)}</p>
      <label>
        Reason (required, recorded in the history)
        <textarea name="reason" rows={3} required value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
      <div class="actions">
        <button type="submit" class={action === 'accept' ? 'primary' : 'danger'} disabled={busy || !reason.trim()}>
          {action[0]?.toUpperCase()}{action.slice(1)} connection
        </button>
        <button type="button" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}

function past(action: Action): string {
  return { accept: 'Accepted', reject: 'Rejected', revoke: 'Revoked' }[action];
}

/** A 409 in plain words: who decided, when, while this page was open. */
async function explainConflict(session: Session, path: string, action: Action, error: ApiError): Promise<string> {
  try {
    const now = (await call<Connection>(session, 'GET', path)).body;
    const decision = now.decision;
    if (decision && decision.outcome !== 'hold') {
      const verb = decision.outcome === 'accept' ? 'Accepted' : 'Rejected';
      return `Not ${past(action).toLowerCase()}: ${verb} by ${decision.decidedBy} at ${when(decision.decidedAt)} while you were looking ("${decision.reason}"). It is now ${now.state}.`;
    }
    return `Not ${past(action).toLowerCase()}: the connection changed while you were looking; it is now ${now.state}. (${error.message})`;
  } catch {
    return `Not ${past(action).toLowerCase()}: ${error.message}`;
  }
}
