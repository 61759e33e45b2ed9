import { openSentCode } from '../../src/platform/sent-codes.ts';
import type { Hub } from '../../src/main.ts';

type Call = (method: 'GET' | 'POST', url: string, body?: unknown) => Promise<{ status: number; body: any }>;

/**
 * Does what a customer's app does after `step_up_required`: starts a challenge from `details.stepUp.request`, gets
 * the one-time code the way the delivering participant would (opening the webhook's sealed code), and completes it.
 * Answers the completed challenge's id, for the payment's retry.
 */
export async function completeOtpStepUp(hub: Pick<Hub, 'db' | 'vault'>, call: Call, refused: { body: any }): Promise<string> {
  const offer = refused.body?.error?.details?.stepUp;
  if (offer === undefined) throw new Error(`no step-up offer in ${JSON.stringify(refused.body)}`);
  const challenge = await call('POST', '/v1/step-up/challenges', { request: offer.request, method: 'otp' });
  if (challenge.status !== 201) throw new Error(`challenge: ${challenge.status} ${JSON.stringify(challenge.body)}`);
  const code = await openSentCode(hub, 'step_up.code_requested', challenge.body.id);
  const done = await call('POST', `/v1/step-up/challenges/${challenge.body.id}/complete`, { code });
  if (done.status !== 200) throw new Error(`complete: ${done.status} ${JSON.stringify(done.body)}`);
  return challenge.body.id;
}
