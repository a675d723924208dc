import { GatewayError, isGatewayError } from '../../errors.ts';
import { bundleFromText } from '../../kernel/bundle.ts';
import { Kernel } from '../../kernel/kernel.ts';

/** The largest draft the Policy page accepts, pasted or uploaded (bytes of UTF-8). */
export const MAX_DRAFT_BYTES = 256 * 1024;

/**
 * A draft bundle typed or uploaded into the console: one policy file's YAML, parsed and validated as the gateway
 * loads a file. Every problem comes back as one GH_ERR_POLICY_INVALID whose message lists them with their lines.
 */
export function draftKernel(text: string): Kernel {
  if (Buffer.byteLength(text) > MAX_DRAFT_BYTES) throw new GatewayError('GH_ERR_BODY_TOO_LARGE', `the draft is larger than ${MAX_DRAFT_BYTES / 1024} KiB`);
  if (text.trim() === '') throw new GatewayError('GH_ERR_POLICY_INVALID', 'the draft is empty: paste a policy file or choose one');
  try {
    return new Kernel(bundleFromText('draft.yaml', text));
  } catch (err) {
    if (isGatewayError(err)) throw err;
    throw new GatewayError('GH_ERR_POLICY_INVALID', `the draft does not compile: ${(err as Error).message}`);
  }
}
