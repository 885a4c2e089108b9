import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { displayParts } from '../../lib/domain/text';

/** The hash route: #/connection/vpce-svc-…/vpce-…?state=pending → parts and query. */
export function useRoute(): { parts: string[]; query: URLSearchParams } {
  const read = () => {
    const [path = '', search = ''] = location.hash.replace(/^#\/?/, '').split('?');
    return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(search) };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function ErrorNote({ message }: { message: string }) {
  return <p class="note error" role="alert">{message}</p>;
}

export function Note({ children, kind = 'info' }: { children: ComponentChildren; kind?: 'info' | 'warn' | 'ok' | 'error' }) {
  return <div class={`note ${kind}`} role={kind === 'error' || kind === 'warn' ? 'alert' : 'status'}>{children}</div>;
}

export function when(iso: string | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Loads with `load` whenever `deps` change; exposes the value, the error and a reload. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { value?: T; error?: string; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ value?: T; error?: string; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (value) => live && setState({ value, loading: false }),
      (error: unknown) => live && setState({ error: messageOf(error), loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/**
 * Text from the API that someone else wrote (a reason, a label in a rule, an OU
 * name in a reason, a principal): isolated from the text around it (<bdi>), and
 * with every control and bidirectional-text control shown as its \uXXXX escape,
 * so that nothing reads differently from what it is.
 */
export function Shown({ text }: { text: unknown }) {
  const value = text === undefined || text === null ? '' : String(text);
  return (
    <bdi>
      {displayParts(value, '\n\t').map((part) => (part.escaped ? <span class="escaped" title="a control character, shown escaped">{part.text}</span> : part.text))}
    </bdi>
  );
}

/** An id (endpoint, service, account): never broken across lines. */
export function Id({ children }: { children: ComponentChildren }) {
  return <span class="id">{children}</span>;
}
