import { diffLines } from 'diff';
import { useEffect, useState } from 'preact/hooks';
import { isMap, isSeq, parseDocument, stringify } from 'yaml';
import { policySchema } from '../../lib/domain/policy';
import { unquotedAccountIds } from '../../lib/domain/policy-file';
import * as v from '../../lib/validation';
import { ApiError, call, type Me, type PolicyPlan, type PolicyVerdict, type Session, type StoredPolicy } from './api';
import { ErrorNote, Id, Note, Shown, messageOf, useLoad, when } from './ui';

type Format = 'yaml' | 'json';

interface FieldProblem {
  field: string;
  line?: number;
  message: string;
}

/** Parses the editor's text (YAML or JSON) and validates it with the API's own schema, each problem at its field and line. */
export function validate(text: string): { document?: unknown; problems: FieldProblem[] } {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) {
    return { problems: doc.errors.map((e) => ({ field: '(syntax)', line: e.linePos?.[0]?.line, message: e.message.split('\n')[0] ?? e.message })) };
  }
  const document = doc.toJS() as unknown;
  const parsed = v.safeParse(policySchema, document ?? {});
  if (parsed.success) return { document, problems: [] };
  const lineOf = (offset: number | undefined) => (offset === undefined ? undefined : text.slice(0, offset).split('\n').length);
  // An account id YAML read as a number: say so, with what was written and what YAML read.
  const unquoted = unquotedAccountIds(doc, text).map((found) => ({ ...found, key: found.path.join('.') }));
  return {
    document,
    problems: parsed.issues.map((issue) => {
      const path = v.keysOf(issue).map((p) => (typeof p === 'symbol' ? String(p) : p));
      const number = unquoted.find((found) => found.key === path.join('.'));
      if (number) return { field: number.message.split(':')[0] ?? '', line: lineOf(number.offset), message: number.message.slice(number.message.indexOf(':') + 2) };
      const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
      return { field: v.pathOf(issue) || '(document)', line: lineOf(node?.range?.[0]), message: issue.message };
    }),
  };
}

function render(policy: unknown, format: Format): string {
  return format === 'json' ? `${JSON.stringify(policy, null, 2)}\n` : stringify(policy);
}

export function Policies({ session, me, policyId }: { session: Session; me: Me; policyId: string }) {
  const services = useLoad(async () => (await call<{ services: { serviceId: string }[] }>(session, 'GET', '/services')).body.services, [session]);
  const current = useLoad(async () => {
    try {
      return (await call<StoredPolicy>(session, 'GET', `/policies/${policyId}`)).body;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  }, [session, policyId]);
  const versions = useLoad(async () => {
    try {
      return (await call<{ versions: StoredPolicy[] }>(session, 'GET', `/policies/${policyId}/versions`)).body.versions;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return [];
      throw error;
    }
  }, [session, policyId]);

  return (
    <section>
      <h1>Policies</h1>
      <div class="filters">
        <label>
          Policy
          <select name="policyId" value={policyId} onChange={(e) => (location.hash = `#/policies/${e.currentTarget.value}`)}>
            <option value="default">default</option>
            {services.value?.map((s) => <option value={s.serviceId}>{s.serviceId}</option>)}
          </select>
        </label>
      </div>
      {current.error && <ErrorNote message={current.error} />}
      {current.value === null && <p class="empty">{policyId === 'default' ? 'There is no default policy yet.' : `${policyId} has no policy of its own; the default policy governs it.`}</p>}
      {current.value && (
        <p data-testid="current-version">
          Version {current.value.version}, by <Shown text={current.value.createdBy} />, {when(current.value.createdAt)}
        </p>
      )}
      {current.value && !current.value.valid && (
        <Note kind="warn">
          <span data-testid="invalid-policy">
            Version {current.value.version} no longer validates, so nothing is decided by it: the services it governs hold every request, and
            nothing is revoked, until a valid version replaces it. <Shown text={current.value.invalidReason} />
          </span>
        </Note>
      )}
      {current.value !== undefined && (
        <Editor
          key={policyId}
          session={session}
          me={me}
          policyId={policyId}
          stored={current.value ?? undefined}
          onSaved={() => {
            current.reload();
            versions.reload();
          }}
        />
      )}
      {versions.value && versions.value.length > 0 && <Versions versions={versions.value} />}
    </section>
  );
}

/** What a plan would do that cannot be taken back: connections revoked, requests rejected. */
function irreversible(plan: PolicyPlan): PolicyPlan['changes'] {
  return plan.changes.filter((change) => change.effect === 'revoke' || change.effect === 'reject');
}

function Editor({ session, me, policyId, stored, onSaved }: { session: Session; me: Me; policyId: string; stored?: StoredPolicy; onSaved: () => void }) {
  const [format, setFormat] = useState<Format>('yaml');
  const [text, setText] = useState(() => render(stored?.policy ?? { mode: 'manual', allow: [] }, 'yaml'));
  // The plan of `text`, or why there is none (the stored version cannot be read, so nothing compares with it).
  const [plan, setPlan] = useState<{ text: string; plan?: PolicyPlan; unreadable?: string }>();
  const [confirming, setConfirming] = useState(false);
  const [note, setNote] = useState<{ kind: 'ok' | 'error' | 'warn'; text: string }>();
  const [busy, setBusy] = useState(false);
  const { document, problems } = validate(text);
  const planIsCurrent = plan?.text === text;
  const approver = me.role === 'approver';

  const switchFormat = (next: Format) => {
    if (next === format) return;
    if (!problems.length || document !== undefined) setText(render(document ?? {}, next));
    setFormat(next);
  };

  const runPlan = async () => {
    setBusy(true);
    setNote(undefined);
    setConfirming(false);
    try {
      setPlan({ text, plan: (await call<PolicyPlan>(session, 'POST', `/policies/${policyId}/plan`, { body: document })).body });
    } catch (error) {
      if (error instanceof ApiError && error.code === 'PolicyUnreadable') setPlan({ text, unreadable: error.message });
      else setNote({ kind: 'error', text: `Plan refused: ${messageOf(error)}` });
    } finally {
      setBusy(false);
    }
  };

  // Revoking and rejecting cannot be taken back: ask first, as accepting one connection does.
  const askOrSave = () => {
    if (plan?.plan && irreversible(plan.plan).length) setConfirming(true);
    else if (plan?.unreadable) setConfirming(true);
    else void save();
  };

  const save = async () => {
    setBusy(true);
    setConfirming(false);
    try {
      const headers: Record<string, string> = stored ? { 'if-match': `"${stored.version}"` } : {};
      const saved = (await call<StoredPolicy>(session, 'PUT', `/policies/${policyId}`, { body: document, headers })).body;
      setPlan(undefined);
      setNote({
        kind: 'ok',
        text:
          `Saved version ${saved.version}. New requests are decided by it from now on; what the plan showed for requests already waiting ` +
          "and for admitted connections takes effect at the reconciler's next run.",
      });
      onSaved();
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        const theirs = await call<StoredPolicy>(session, 'GET', `/policies/${policyId}`).then((a) => a.body, () => undefined);
        setNote({
          kind: 'warn',
          text:
            `Not saved: someone saved first. ${theirs ? `Version ${theirs.version} was saved by ${theirs.createdBy} at ${when(theirs.createdAt)}` : 'A newer version exists'}` +
            ` while you were editing version ${stored?.version ?? 0}. Your text is still here: reload the policy, compare, and plan again.`,
        });
      } else {
        setNote({ kind: 'error', text: `Not saved: ${messageOf(error)}` });
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="editor card">
      <div class="editor-head">
        <h2>{approver ? 'Edit' : 'Policy (read only)'}</h2>
        <div class="tabs" role="tablist">
          {(['yaml', 'json'] as const).map((f) => (
            <button role="tab" aria-selected={format === f} class={format === f ? 'active' : ''} onClick={() => switchFormat(f)}>{f.toUpperCase()}</button>
          ))}
        </div>
      </div>
      <textarea
        name="policy"
        aria-label="Policy"
        class="code"
        rows={16}
        spellcheck={false}
        readOnly={!approver}
        value={text}
        onInput={(e) => setText(e.currentTarget.value)}
        aria-invalid={problems.length > 0}
      />
      {problems.length > 0 ? (
        <ul class="problems" data-testid="problems">
          {problems.map((p) => (
            <li>
              <code>{p.field}</code>{p.line ? ` (line ${p.line})` : ''}: <Shown text={p.message} />
            </li>
          ))}
        </ul>
      ) : (
        <p class="hint valid">Valid policy.</p>
      )}
      {approver ? (
        <div class="actions">
          <button onClick={runPlan} disabled={busy || problems.length > 0}>Plan</button>
          <button class="primary" onClick={askOrSave} disabled={busy || confirming || problems.length > 0 || !planIsCurrent} title={planIsCurrent ? '' : 'Plan this text first'}>
            Save{stored ? ` over version ${stored.version}` : ''}
          </button>
        </div>
      ) : (
        <p class="hint" data-testid="viewer-plan-hint">
          Only approvers can plan and save: a plan reads every connection the policy governs from EC2, whose request rate the decisions need.
        </p>
      )}
      {confirming && plan && (
        <SaveDialog policyId={policyId} stored={stored} plan={plan.plan} unreadable={plan.unreadable} busy={busy} onConfirm={save} onCancel={() => setConfirming(false)} />
      )}
      {note && <Note kind={note.kind}><span data-testid="policy-note"><Shown text={note.text} /></span></Note>}
      {plan?.unreadable && (
        <Note kind="warn">
          <span data-testid="plan-unreadable">
            No plan: the stored version cannot be read, so nothing compares with it (<Shown text={plan.unreadable} />). Saving replaces it; the reconciler
            then decides by the new version at its next run.
          </span>
        </Note>
      )}
      {plan?.plan && <PlanView plan={plan.plan} stale={!planIsCurrent} />}
    </div>
  );
}

/** Says what saving will do that cannot be taken back, and asks. */
function SaveDialog({ policyId, stored, plan, unreadable, busy, onConfirm, onCancel }: {
  policyId: string;
  stored?: StoredPolicy;
  plan?: PolicyPlan;
  unreadable?: string;
  busy: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const changes = plan ? irreversible(plan) : [];
  const count = (effect: 'revoke' | 'reject') => changes.filter((change) => change.effect === effect).length;
  const revokes = count('revoke');
  const rejects = count('reject');
  const consequences = [
    ...(revokes ? [`revokes ${revokes} admitted connection${revokes > 1 ? 's' : ''}: the consumers lose access through them`] : []),
    ...(rejects ? [`rejects ${rejects} waiting request${rejects > 1 ? 's' : ''}: to ask again, the consumers must create new endpoints`] : []),
  ];
  return (
    <div class="card dialog" role="dialog" aria-label={`save ${policyId}`}>
      <h3>Save {policyId}{stored ? ` over version ${stored.version}` : ''}?</h3>
      {unreadable ? (
        <p class="consequence">There is no plan to show: the stored version cannot be read. The new version governs at once; check what it decides with Evaluate.</p>
      ) : (
        <>
          <p class="consequence" data-testid="save-consequence">
            At the reconciler's next run this {consequences.join(', and ')}. This cannot be undone.
          </p>
          <ul class="affected">
            {changes.map((c) => (
              <li>
                <span class={`effect ${c.effect}`}>{c.effect}</span> <Id>{c.endpointId}</Id> of account <Id>{c.ownerAccountId}</Id>: <Shown text={c.planned.reason} />
              </li>
            ))}
          </ul>
        </>
      )}
      <div class="actions">
        <button class="danger" disabled={busy} onClick={onConfirm}>
          {unreadable ? 'Save without a plan' : `Save, and ${[revokes ? `revoke ${revokes}` : '', rejects ? `reject ${rejects}` : ''].filter(Boolean).join(' and ')}`}
        </button>
        <button type="button" onClick={onCancel}>Cancel</button>
      </div>
    </div>
  );
}

function PlanView({ plan, stale }: { plan: PolicyPlan; stale: boolean }) {
  const { summary } = plan;
  return (
    <div class="plan" data-testid="plan">
      <h3>Plan {stale && <span class="stale">(the text changed since: plan again)</span>}</h3>
      <p class="summary">
        <span class="effect accept">{summary.accept} to accept</span> <span class="effect reject">{summary.reject} to reject</span>{' '}
        <span class="effect revoke">{summary.revoke} to revoke</span> <span class="effect hold">{summary.hold} held</span> <span>{summary.unchanged} admitted unchanged</span>
        {summary.unreadable > 0 && <> <span class="effect unreadable">{summary.unreadable} not decided: the organization could not be read</span></>}
      </p>
      {(plan.revocationLimit ?? []).map((trip) => (
        <Note kind="warn">
          Safety limit: {trip.candidates} revocation(s) of {trip.admitted} admitted connection(s) on {trip.serviceId} exceed {trip.maxRevocationsPerRun} per run
          or {trip.maxRevocationPercent}%, so none would be revoked; approvers would be alerted.
        </Note>
      ))}
      {plan.changes.length > 0 && (
        <table class="list">
          <thead><tr><th>Effect</th><th>Endpoint</th><th>Account</th><th>State</th><th>Now</th><th>Planned</th><th>Why</th></tr></thead>
          <tbody>
            {plan.changes.map((c) => (
              <tr>
                <td data-label="Effect"><span class={`effect ${c.effect}`}>{c.effect}</span></td>
                <td data-label="Endpoint"><a href={`#/connection/${c.serviceId}/${c.endpointId}`}><Id>{c.endpointId}</Id></a></td>
                <td data-label="Account"><Id>{c.ownerAccountId}</Id></td>
                <td data-label="State">{c.state}</td>
                <td data-label="Now">{c.current.outcome} <code><Shown text={c.current.rule} /></code></td>
                <td data-label="Planned">{c.planned.outcome} <code><Shown text={c.planned.rule} /></code></td>
                <td data-label="Why" class="why"><Shown text={c.planned.reason} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** The versions, newest first, and a diff between any two. */
function Versions({ versions }: { versions: StoredPolicy[] }) {
  const [from, setFrom] = useState(versions[1]?.version ?? versions[0]?.version ?? 1);
  const [to, setTo] = useState(versions[0]?.version ?? 1);
  useEffect(() => {
    setFrom(versions[1]?.version ?? versions[0]?.version ?? 1);
    setTo(versions[0]?.version ?? 1);
  }, [versions]);
  const text = (version: number) => render(versions.find((v) => v.version === version)?.policy ?? {}, 'yaml');
  const parts = diffLines(text(from), text(to));
  const pick = (value: number, set: (v: number) => void, name: string) => (
    <select name={name} value={value} onChange={(e) => set(Number(e.currentTarget.value))}>
      {versions.map((v) => <option value={v.version}>{v.version}</option>)}
    </select>
  );
  return (
    <div class="card">
      <h2>Versions</h2>
      <table class="list">
        <thead><tr><th>Version</th><th>By</th><th>At</th><th>Valid</th></tr></thead>
        <tbody>
          {versions.map((v) => (
            <tr>
              <td data-label="Version">{v.version}</td>
              <td data-label="By"><Shown text={v.createdBy} /></td>
              <td data-label="At"><Id>{when(v.createdAt)}</Id></td>
              <td data-label="Valid">{v.valid ? 'yes' : <span class="stale">no: <Shown text={v.invalidReason} /></span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="filters">Compare version {pick(from, setFrom, 'from')} with version {pick(to, setTo, 'to')}</p>
      <pre class="diff" data-testid="diff">
        {parts.map((part) =>
          part.value.split('\n').filter((line, i, all) => i < all.length - 1 || line !== '').map((line) => (
            <div class={part.added ? 'add' : part.removed ? 'del' : ''}>{part.added ? '+ ' : part.removed ? '- ' : '  '}{line}</div>
          )),
        )}
      </pre>
    </div>
  );
}

/** Try an account and a region against the policy that governs a service (or the default). */
export function Evaluate({ session }: { session: Session }) {
  const [policyId, setPolicyId] = useState('default');
  const [accountId, setAccountId] = useState('');
  const [region, setRegion] = useState('us-east-1');
  const [result, setResult] = useState<PolicyVerdict>();
  const [error, setError] = useState<string>();
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      setResult((await call<PolicyVerdict>(session, 'POST', `/policies/${policyId.trim()}/evaluate`, { body: { accountId: accountId.trim(), region: region.trim() } })).body);
    } catch (caught) {
      setResult(undefined);
      setError(messageOf(caught));
    }
  };
  return (
    <section>
      <h1>Evaluate</h1>
      <form class="card filters" onSubmit={submit}>
        <label>Service id or default<input name="policyId" value={policyId} onInput={(e) => setPolicyId(e.currentTarget.value)} /></label>
        <label>Account<input name="accountId" value={accountId} placeholder="123456789012" onInput={(e) => setAccountId(e.currentTarget.value)} /></label>
        <label>Region<input name="region" value={region} onInput={(e) => setRegion(e.currentTarget.value)} /></label>
        <button class="primary" type="submit">Evaluate</button>
      </form>
      {error && <ErrorNote message={error} />}
      {result && (
        <div class="card" data-testid="evaluation">
          <p class={`outcome ${result.evaluation.outcome}`}>{result.evaluation.outcome}</p>
          <p>Rule <code><Shown text={result.evaluation.rule} /></code> of {result.policyId === null ? 'no policy' : `policy ${result.policyId} version ${result.version}`}</p>
          <p class="reason"><Shown text={result.evaluation.reason} /></p>
        </div>
      )}
    </section>
  );
}
