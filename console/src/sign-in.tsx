import { useState } from 'preact/hooks';
import type { ConsoleSettings, Session } from './api';
import { parseCredentials, saveSession, startSignIn } from './auth';
import { ErrorNote, messageOf } from './ui';

export function SignIn({ settings, problem, onSignedIn }: { settings: ConsoleSettings; problem?: string; onSignedIn: (session: Session) => void }) {
  const [text, setText] = useState('');
  const [region, setRegion] = useState(settings.region);
  const [error, setError] = useState<string>();

  const useCredentials = (event: Event) => {
    event.preventDefault();
    try {
      const session: Session = { kind: 'iam', credentials: parseCredentials(text), region: region.trim() };
      saveSession(session);
      setText('');
      onSignedIn(session);
    } catch (caught) {
      setError(messageOf(caught));
    }
  };

  return (
    <main class="narrow">
      <h1>vpce-gatekeeper approvals</h1>
      {problem && <ErrorNote message={problem} />}
      {settings.auth === 'jwt' ? (
        <section class="card">
          <h2>Sign in</h2>
          <p>This stage signs in with single sign-on (OpenID Connect).</p>
          <button class="primary" onClick={() => startSignIn(settings).catch((caught: unknown) => setError(messageOf(caught)))}>
            Sign in with SSO
          </button>
          <p class="hint">Your tokens stay in this tab's session storage and are gone when you close it.</p>
        </section>
      ) : (
        <form class="card" onSubmit={useCredentials}>
          <h2>Sign in with AWS credentials</h2>
          <p>
            Paste temporary credentials: the output of <code>aws configure export-credentials</code>, or the <code>AWS_ACCESS_KEY_ID</code>,{' '}
            <code>AWS_SECRET_ACCESS_KEY</code> and <code>AWS_SESSION_TOKEN</code> lines. Every request is signed with SigV4 in this page.
          </p>
          <label>
            Credentials
            <textarea name="credentials" rows={7} spellcheck={false} autocomplete="off" value={text} onInput={(e) => setText(e.currentTarget.value)} />
          </label>
          <label>
            Region of the API
            <input name="region" value={region} onInput={(e) => setRegion(e.currentTarget.value)} />
          </label>
          <p class="hint" data-testid="storage-note">
            The credentials are kept in this tab's session storage only: never in local storage, never sent anywhere but as signatures to this API,
            and gone when you close the tab or sign out.
          </p>
          <button class="primary" type="submit">Sign in</button>
        </form>
      )}
      {error && <ErrorNote message={error} />}
    </main>
  );
}
