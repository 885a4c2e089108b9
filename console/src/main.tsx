import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, type ConsoleSettings, type Me, type Session } from './api';
import { finishSignIn, forget, loadSession } from './auth';
import { SignIn } from './sign-in';
import { ConnectionPage, Queue, Services } from './connections';
import { Evaluate, Policies } from './policies';
import { SlackSetup } from './slack';
import { ErrorNote, Shown, messageOf, useRoute } from './ui';
import './app.css';

function App() {
  const [settings, setSettings] = useState<ConsoleSettings>();
  const [session, setSession] = useState<Session | undefined>(loadSession());
  const [me, setMe] = useState<Me>();
  const [problem, setProblem] = useState<string>();
  const route = useRoute();

  useEffect(() => {
    fetch('console/config.json')
      .then((r) => r.json() as Promise<ConsoleSettings>)
      .then(async (loaded) => {
        setSettings(loaded);
        const fresh = await finishSignIn(loaded);
        if (fresh) setSession(fresh);
      })
      .catch((error: unknown) => setProblem(error instanceof Error ? error.message : String(error)));
  }, []);

  useEffect(() => {
    if (!session) return setMe(undefined);
    call<Me>(session, 'GET', '/me')
      .then((answer) => setMe(answer.body))
      .catch((error: unknown) => {
        signOut();
        setProblem(error instanceof ApiError && (error.status === 401 || error.status === 403) ? `sign-in refused: ${error.message}` : messageOf(error));
      });
  }, [session]);

  const signOut = () => {
    forget();
    setSession(undefined);
  };

  if (!settings) return <main class="narrow">{problem ? <ErrorNote message={problem} /> : <p class="loading">Loading…</p>}</main>;
  if (!session || !me) {
    return <SignIn settings={settings} problem={problem} onSignedIn={(s) => { setProblem(undefined); setSession(s); }} />;
  }
  const page = route.parts[0] ?? 'queue';
  return (
    <>
      <header class="top">
        <strong class="brand">vpce-gatekeeper</strong>
        <nav>
          {[['queue', 'Queue'], ['services', 'Services'], ['policies', 'Policies'], ['evaluate', 'Evaluate'], ['slack', 'Slack']].map(([id, label]) => (
            <a href={`#/${id}`} class={page === id || (page === 'connection' && id === 'queue') ? 'active' : ''}>{label}</a>
          ))}
        </nav>
        <div class="session">
          <span class="who" data-testid="who">
            <Shown text={me.principal} /> · <span class={`role ${me.role}`}>{me.role}</span> · {me.via === 'iam' ? 'SigV4' : 'SSO'}
          </span>
          <button class="link" onClick={signOut}>Sign out</button>
        </div>
      </header>
      <main>
        {page === 'queue' && <Queue session={session} query={route.query} />}
        {page === 'services' && <Services session={session} />}
        {page === 'connection' && <ConnectionPage session={session} me={me} serviceId={route.parts[1] ?? ''} endpointId={route.parts[2] ?? ''} />}
        {page === 'policies' && <Policies session={session} me={me} policyId={route.parts[1] ?? 'default'} />}
        {page === 'evaluate' && <Evaluate session={session} />}
        {page === 'slack' && <SlackSetup settings={settings} />}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
