import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

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
