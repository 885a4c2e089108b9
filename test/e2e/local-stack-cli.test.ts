// `npm start` as a user runs it: the ready line, the policy file, its usage, shutting down.
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startLocalStack } from './local-stack';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

describe('npm start', () => {
  it('refuses to start with an invalid policy file, naming the problem', async () => {
    const start = startLocalStack({ policy: 'default:\n  mode: sometimes\n' });

    await expect(start).rejects.toThrow(/exited \(code 1\)[\s\S]*mode: must be auto, manual or observe/);
  });

  it('refuses to start with a policy file that does not exist', async () => {
    const start = startLocalStack({ policyFile: '/nonexistent/policy.yaml' });

    await expect(start).rejects.toThrow(/exited \(code 1\)[\s\S]*cannot read policy file/);
  });

  it('loads the policy file at start and again on reset, and stops cleanly on SIGTERM', async () => {
    const stack = await startLocalStack({
      policy: { default: { mode: 'manual' }, 'vpce-svc-0123456789abcdef0': { allow: [{ account: '111122223333' }] } },
    });

    await stack.reset();
    const health = await stack.health();
    const loaded = stack.output().match(/INFO +local-stack: policies loaded [^\n]*/g) ?? [];
    const exit = await stack.stop();

    expect(health).toMatchObject({ status: 'ok', tableName: 'vpce-gatekeeper-local', ec2Endpoint: `${stack.baseUrl}/aws/ec2` });
    expect(stack.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(loaded).toHaveLength(2);
    expect(loaded[0]).toContain('policyIds=["default","vpce-svc-0123456789abcdef0"]');
    expect(exit).toEqual({ code: 0, signal: null });
  });
});

describe('npm start output', () => {
  async function acceptOne(stack: Awaited<ReturnType<typeof startLocalStack>>): Promise<string> {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: '111122223333' });
    await stack.waitFor(async () => (await stack.outbox()).some((m) => (m.message as { eventType?: string }).eventType === 'accepted'));
    await setTimeout(300);
    return vpcEndpointId;
  }

  it('is one short line per log entry by default, without metric documents', async () => {
    const stack = await startLocalStack({ policy: { default: { allow: [{ account: '111122223333', label: 'acme-prod' }] } } });
    const endpointId = await acceptOne(stack);
    const output = stack.output();
    await stack.stop();

    expect(output).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO +onConnectionNotification: connection accepted serviceId=vpce-svc-[0-9a-f]+ endpointId=${endpointId} rule=allow:acme-prod decidedBy=policy$`, 'm'));
    expect(output).not.toContain('"_aws"');
    expect(output).not.toContain('function_arn');
    for (const line of output.split('\n')) expect(line.length).toBeLessThan(400);
  });

  it('is the full JSON, metric documents included, with LOG_FORMAT=json', async () => {
    const stack = await startLocalStack({ policy: { default: { allow: [{ account: '111122223333', label: 'acme-prod' }] } }, env: { LOG_FORMAT: 'json' } });
    const endpointId = await acceptOne(stack);
    const output = stack.output();
    await stack.stop();

    const accepted = output.split('\n').find((line) => line.includes('"message":"connection accepted"')) ?? '';
    expect(JSON.parse(accepted)).toMatchObject({ level: 'INFO', endpointId, rule: 'allow:acme-prod', function_name: expect.stringContaining('onConnectionNotification') });
    expect(output).toMatch(/^\{"_aws":\{.*"Decisions":1\}$/m);
    expect(output).toMatch(/^\{"level":"info","source":"local-stack","message":"policies loaded"/m);
  });
});

describe('npm start, through npm', () => {
  it('prints its usage for --help: options, variables and where the policy comes from', async () => {
    const { child, output } = npmStart(['--help']);

    const exit = await exitOf(child);

    expect(exit).toEqual({ code: 0, signal: null });
    expect(output()).toContain('--policy FILE');
    expect(output()).toContain('every request is held for an approver');
    expect(output()).toMatch(/PORT +port on 127\.0\.0\.1/);
    expect(output()).toContain('RECONCILE_INTERVAL_SECONDS');
    expect(output()).not.toContain('ready at');
  });

  it('refuses an unknown option and points to --help', async () => {
    const { child, output } = npmStart(['--polcy', 'x.yaml']);

    const exit = await exitOf(child);

    expect(exit.code).toBe(1);
    expect(output()).toMatch(/Unknown option '--polcy'.*npm start -- --help/);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('stops on %s sent to the npm process, and frees its port', async (signal) => {
    const { child, output } = npmStart();
    const line = await readyLine(output);
    const port = Number(/:(\d+);/.exec(line)?.[1]);
    expect(await portIsFree(port)).toBe(false);

    child.kill(signal);
    const exit = await exitOf(child);
    await setTimeout(200);

    expect(exit.code === 0 || exit.signal === signal).toBe(true);
    expect(output()).toContain(`${signal} received, stopping the local stack`);
    expect(await portIsFree(port)).toBe(true);
  });

  it('says in its ready line when no policy was loaded, so that everything will be held', async () => {
    const { child, output } = npmStart();

    const line = await readyLine(output);
    child.kill('SIGTERM');
    await exitOf(child);

    expect(line).toMatch(/ready at http:\/\/127\.0\.0\.1:\d+; no policy loaded, so every request will be held for an approver/);
  });

  /** What `npm start` prints up to a moment after its ready line, and the base URL that line names. */
  async function readyOutput(args: string[]): Promise<{ line: string; base: string; output: string }> {
    const { child, output } = npmStart(args);
    const line = await readyLine(output);
    await setTimeout(100);
    child.kill('SIGTERM');
    await exitOf(child);
    return { line, base: /ready at (\S+);/.exec(line)?.[1] ?? '', output: output() };
  }

  it('names the policies loaded in its ready line, and then where the console is and how to sign in', async () => {
    const { line, base, output } = await readyOutput(['--policy', 'examples/policies.yaml']);

    expect(line).toMatch(/; policies loaded from examples\/policies\.yaml: default$/);
    expect(output).toContain(`${line}\n  console  ${base}/console (sign in with the local approver's keys: LOCALAPPROVER / local-approver-secret)\n  API      SigV4`);
  });

  it('says in its ready lines that JWT is on, and where the issuer is', async () => {
    const { base, output } = await readyOutput(['--auth', 'jwt']);

    expect(output).toContain(`  console  ${base}/console (Sign in with SSO: local-approver or local-viewer)`);
    expect(output).toContain(`  API      JWT on: bearer tokens from the local OpenID Connect issuer at ${base}/local/oidc`);
  });

  it('says what to do when its port is taken, by another stack say', async () => {
    const first = npmStart();
    const port = Number(/:(\d+);/.exec(await readyLine(first.output))?.[1]);

    const second = npmStart([], { PORT: String(port) });
    const exit = await exitOf(second.child);
    first.child.kill('SIGTERM');
    await exitOf(first.child);

    expect(exit.code).toBe(1);
    expect(second.output()).toContain(`port ${port} on 127.0.0.1 is in use, perhaps by another local stack. Stop that one, or start this one on another port: PORT=${port + 1} npm start`);
  });
});

/** Runs `npm start` exactly as a user does (npm, then node), on a free port. */
function npmStart(args: string[] = [], env: Record<string, string> = {}): { child: ChildProcess; output: () => string } {
  const child = spawn('npm', ['start', '--silent', ...(args.length ? ['--', ...args] : [])], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: '0', RECONCILE_INTERVAL_SECONDS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  return { child, output: () => output };
}

async function readyLine(output: () => string): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const line = /^vpce-gatekeeper local stack ready at .*$/m.exec(output())?.[0];
    if (line) return line;
    await setTimeout(50);
  }
  throw new Error(`no ready line within 30 s:\n${output()}`);
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
}

/** True when nothing accepts connections on the port any more. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(false);
    });
    socket.once('error', () => done(true));
  });
}

describe('LOCAL_FUNCTION_WORKERS', () => {
  it("runs the notification function in worker threads, one execution environment each: a burst is decided as on the stack's own thread", async () => {
    const stack = await startLocalStack({
      policy: { default: { allow: [{ account: '111122223333', label: 'acme-prod' }] } },
      env: { LOCAL_FUNCTION_WORKERS: '2', LOCAL_BATCH_SIZE: '10' },
    });
    try {
      const { serviceId } = await stack.createService();
      const { vpcEndpointIds } = await stack.createEndpoints(serviceId, { ownerAccountId: '111122223333', count: 40 });
      await stack.waitFor(async () => (await stack.listEndpoints(serviceId)).every((e) => e.state !== 'pendingAcceptance') && (await stack.idle()), {
        description: 'the 40 connections to be decided',
      });
      const records = await Promise.all(vpcEndpointIds.map((endpointId) => stack.record(serviceId, endpointId)));
      const invocations = await stack.invocations();
      const calls = await stack.calls();

      expect(records.map((record) => record?.decision?.rule)).toEqual(vpcEndpointIds.map(() => 'allow:acme-prod'));
      expect(invocations.length).toBeGreaterThanOrEqual(4);
      expect(invocations.every((invocation) => invocation.ok && invocation.failedItems === 0)).toBe(true);
      // Four batches at once keep both environments busy, and each keeps its own cache: the service's
      // description is read once by each (one thread would read it once in all).
      expect(calls.byAction.DescribeVpcEndpointServiceConfigurations?.received).toBe(2);
    } finally {
      await stack.stop();
    }
  });

  it('refuses a count that is not a whole number of 1 or more, naming the variable', async () => {
    await expect(startLocalStack({ env: { LOCAL_FUNCTION_WORKERS: '0' } })).rejects.toThrow(/LOCAL_FUNCTION_WORKERS/);
  });
});
