// `npm start` as a user runs it: the ready line, the policy file, shutting down.
import { describe, expect, it } from 'vitest';
import { startLocalStack } from './local-stack';

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
    const loaded = stack.output().match(/"message":"policies loaded"[^\n]*/g) ?? [];
    const exit = await stack.stop();

    expect(health).toMatchObject({ status: 'ok', tableName: 'vpce-gatekeeper-local', ec2Endpoint: `${stack.baseUrl}/aws/ec2` });
    expect(stack.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(loaded).toHaveLength(2);
    expect(loaded[0]).toContain('"policyIds":["default","vpce-svc-0123456789abcdef0"]');
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
