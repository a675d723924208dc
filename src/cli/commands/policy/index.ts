import { usage } from '../../args.ts';
import { CHECK_HELP, runCheck } from './check.ts';
import { EXPLAIN_HELP, runExplain } from './explain.ts';
import { REPLAY_HELP, runReplay } from './replay.ts';
import { runShadow, SHADOW_HELP } from './shadow.ts';
import { runTest, TEST_HELP } from './test.ts';

export const POLICY_HELP = `Usage: gatehouse policy <check|test|explain|replay|shadow> [options]

Tools for policy authors: validate a bundle, run its tests with rule coverage, explain one decision, and replay
the recorded decisions under a draft to see which would change, and report where the shadow policies differed.

${CHECK_HELP}

${TEST_HELP}

${EXPLAIN_HELP}

${REPLAY_HELP}

${SHADOW_HELP}

Exit codes: 0 success, 1 failure (invalid policy, failed test), 2 bad usage.`;

const ACTIONS: Record<string, (argv: string[]) => Promise<number>> = { check: runCheck, test: runTest, explain: runExplain, replay: runReplay, shadow: runShadow };

export async function runPolicy(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const run = action === undefined ? undefined : ACTIONS[action];
  if (!run) throw usage(action && !action.startsWith('-') ? `unknown action "${action}"` : 'missing an action: check, test, explain, replay or shadow');
  return run(rest);
}
