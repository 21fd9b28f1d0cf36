// The daemon's approval notification: an owner-chosen command run for each pending
// approval (a desktop notification, a chat message, a phone push). It gets the approval
// as JSON on stdin and as AIVAULT_APPROVAL_* variables, and a minimal environment: never
// the daemon's own (which may hold the master key).

import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import type { ApprovalRecord } from '../storage/types.ts';

/** What a desktop notifier needs from the environment, and nothing else. */
const PASSED = ['PATH', 'HOME', 'LANG', 'USER', 'DISPLAY', 'WAYLAND_DISPLAY', 'DBUS_SESSION_BUS_ADDRESS', 'XDG_RUNTIME_DIR', 'AIVAULT_DIR'];
const COMMAND_TIMEOUT_MS = 10_000;

export function approvalNotifier(command: string, log: Logger): (approval: ApprovalRecord) => void {
  return (approval) => {
    const env: Record<string, string> = {};
    for (const name of PASSED) if (process.env[name] !== undefined) env[name] = process.env[name]!;
    Object.assign(env, {
      AIVAULT_APPROVAL_ID: approval.id,
      AIVAULT_APPROVAL_AGENT: approval.agentId,
      AIVAULT_APPROVAL_AGENT_NAME: approval.details?.agentName ?? '',
      AIVAULT_APPROVAL_URL: approval.details?.url ?? '',
      AIVAULT_APPROVAL_CAPABILITY: approval.capability,
      AIVAULT_APPROVAL_METHOD: approval.method,
      AIVAULT_APPROVAL_HOST: approval.host,
      AIVAULT_APPROVAL_PATH: approval.path,
      AIVAULT_APPROVAL_EXPIRES: approval.expiresAt,
    });
    const child = spawn('/bin/sh', ['-c', command], { env, stdio: ['pipe', 'ignore', 'ignore'], timeout: COMMAND_TIMEOUT_MS });
    child.on('error', (err) => log.warn({ approval: approval.id, kind: err.name }, 'approval notification command failed to start'));
    child.on('exit', (code) => {
      if (code !== 0) log.warn({ approval: approval.id, code }, 'approval notification command failed');
    });
    child.stdin.on('error', () => {});
    child.stdin.end(JSON.stringify(approval) + '\n');
  };
}
