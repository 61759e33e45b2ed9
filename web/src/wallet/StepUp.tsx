import { useState } from 'react';
import { startAuthentication, WebAuthnError, type PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/browser';
import { ApiError, type Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Field } from '../shared/ui.tsx';

/**
 * Step-up in the page: a payment (a P2P confirm, a scanned-QR payment, a payment link) that risk wants approved answers
 * 428 `step_up_required` with an offer (`error.details.stepUp`): what is approved and the methods this customer has.
 * The customer picks one; the page starts a challenge, proves it (the one-time code the bank or wallet sent, the
 * authenticator app's code, or a passkey through navigator.credentials.get) and the payment is sent again with the
 * completed challenge's id (a new Idempotency-Key: api.post makes one per call).
 */
export type StepUpMethod = 'otp' | 'totp' | 'passkey';
const METHODS: readonly StepUpMethod[] = ['otp', 'totp', 'passkey'];

export interface StepUpOffer {
  readonly request: string;
  readonly methods: readonly StepUpMethod[];
  readonly expiresInS: number;
  readonly summary: { readonly amount: { readonly amount: string; readonly currency: string }; readonly payeeName: string };
}

interface Challenge {
  readonly id: string;
  readonly method: StepUpMethod;
  readonly status: string;
  readonly attemptsRemaining: number;
  readonly expiresAt: string;
  readonly webauthn?: PublicKeyCredentialRequestOptionsJSON;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The offer inside a `step_up_required` answer, checked field by field (it comes from the network). */
export function stepUpOfferOf(error: unknown): StepUpOffer | undefined {
  if (!(error instanceof ApiError) || error.code !== 'step_up_required' || !isRecord(error.details)) return undefined;
  const offer = error.details.stepUp;
  if (!isRecord(offer) || typeof offer.request !== 'string' || !Array.isArray(offer.methods) || !isRecord(offer.summary)) return undefined;
  const methods = METHODS.filter((m) => (offer.methods as unknown[]).includes(m));
  const { amount, payeeName } = offer.summary;
  if (!isRecord(amount) || typeof amount.amount !== 'string' || typeof amount.currency !== 'string' || typeof payeeName !== 'string') return undefined;
  return {
    request: offer.request,
    methods,
    expiresInS: typeof offer.expiresInS === 'number' ? offer.expiresInS : 0,
    summary: { amount: { amount: amount.amount, currency: amount.currency }, payeeName },
  };
}

/**
 * A payment that may be stepped up: `attempt(pay)` runs it; when it answers `step_up_required`, the offer is kept for
 * <StepUp> (which calls `attempt(pay, challengeId)` once the customer approved) and nothing is thrown. Any other
 * failure is thrown to the caller.
 */
export function useStepUp() {
  const [offer, setOffer] = useState<StepUpOffer | undefined>();
  const attempt = async (pay: (stepUpChallengeId: string | undefined) => Promise<void>, stepUpChallengeId?: string): Promise<void> => {
    try {
      await pay(stepUpChallengeId);
      setOffer(undefined);
    } catch (e) {
      const next = stepUpOfferOf(e);
      if (next === undefined) throw e;
      setOffer(next);
    }
  };
  return { offer, attempt, cancel: () => setOffer(undefined) };
}

/** Answers after which this approval cannot go on: the customer starts again (the payment is retried for a new offer). */
const DEAD_ENDS: Readonly<Record<string, string>> = {
  challenge_locked: 'stepup.locked',
  challenge_expired: 'stepup.expired',
  challenge_request_invalid: 'stepup.requestExpired',
  step_up_invalid: 'stepup.invalid',
  challenge_state: 'stepup.invalid',
};

/**
 * The approval panel. `onApproved(challengeId)` retries the payment with the completed challenge; `onRestart()` retries
 * it without one (a fresh offer after an expiry or a lock). Both may throw: the panel shows what went wrong.
 */
export function StepUp({ api, offer, onApproved, onRestart, onCancel }: { api: Api; offer: StepUpOffer; onApproved: (challengeId: string) => Promise<void>; onRestart: () => Promise<void>; onCancel: () => void }) {
  const { t, money } = useI18n();
  const [challenge, setChallenge] = useState<Challenge | undefined>();
  const [demo, setDemo] = useState<{ code: string; deliveredBy: string } | undefined>();
  const [code, setCode] = useState('');
  /** The challenge once completed: the payment is retried with it (again, if the retry itself failed). */
  const [completed, setCompleted] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  // A known failure, said in the page's language: wrong answers with the attempts left, dead ends with what to do.
  const [problem, setProblem] = useState<{ key: string; attemptsRemaining?: number; deadEnd: boolean } | undefined>();

  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    setProblem(undefined);
    try {
      await action();
    } catch (e) {
      if (e instanceof ApiError && e.code === 'challenge_failed') {
        const left = isRecord(e.details) && typeof e.details.attemptsRemaining === 'number' ? e.details.attemptsRemaining : undefined;
        setProblem({ key: 'stepup.wrong', ...(left !== undefined ? { attemptsRemaining: left } : {}), deadEnd: false });
      } else if (e instanceof ApiError && DEAD_ENDS[e.code] !== undefined) {
        setProblem({ key: DEAD_ENDS[e.code] ?? 'stepup.invalid', deadEnd: true });
      } else if (e instanceof WebAuthnError && (e.code === 'ERROR_INVALID_DOMAIN' || e.code === 'ERROR_INVALID_RP_ID')) {
        setProblem({ key: 'passkey.wrongAddress', deadEnd: false });
      } else if (e instanceof WebAuthnError || (e instanceof Error && e.name === 'NotAllowedError')) {
        setProblem({ key: 'stepup.passkeyCancelled', deadEnd: false });
      } else setError(e);
    } finally {
      setBusy(false);
    }
  };

  const complete = async (id: string, proof: { code: string } | { webauthn: unknown }) => {
    await api.post<Challenge>(`/v1/step-up/challenges/${encodeURIComponent(id)}/complete`, proof);
    setCompleted(id);
    await onApproved(id);
  };

  const start = (method: StepUpMethod) =>
    run(async () => {
      setCode('');
      setDemo(undefined);
      const c = await api.post<Challenge>('/v1/step-up/challenges', { request: offer.request, method });
      setChallenge(c);
      if (method === 'otp') {
        // Demo: the code the demo bank or wallet "texted" (the hub holds it only sealed to them); a real app shows nothing here.
        try {
          setDemo(await api.get<{ code: string; deliveredBy: string }>(`/demo/v1/codes/step-up-challenges/${encodeURIComponent(c.id)}`));
        } catch {
          setDemo(undefined);
        }
      }
      if (method === 'passkey') {
        if (c.webauthn === undefined) throw new Error('the challenge carries no passkey options');
        await complete(c.id, { webauthn: await startAuthentication({ optionsJSON: c.webauthn }) });
      }
    });

  const retryPasskey = () =>
    run(async () => {
      if (challenge?.webauthn === undefined) return;
      await complete(challenge.id, { webauthn: await startAuthentication({ optionsJSON: challenge.webauthn }) });
    });

  const restart = () =>
    run(async () => {
      setChallenge(undefined);
      setCompleted(undefined);
      setDemo(undefined);
      await onRestart();
    });

  const deadEnd = problem?.deadEnd === true;
  return (
    <div className="stepup" role="group" aria-label={t('stepup.title')} data-testid="step-up" data-challenge-id={challenge?.id ?? ''}>
      <p>
        <strong>{t('stepup.title')}</strong>
      </p>
      <p data-testid="step-up-summary">
        {t('stepup.approve')}: <strong>{money(offer.summary.amount.amount, offer.summary.amount.currency)}</strong> → {offer.summary.payeeName}
      </p>
      {deadEnd ? null : completed !== undefined ? (
        // Approved, but the payment itself did not go through (its error is below): send it again with the same approval.
        <button type="button" onClick={() => void run(() => onApproved(completed))} disabled={busy} data-testid="step-up-pay-again">
          {t('stepup.payAgain')}
        </button>
      ) : challenge === undefined ? (
        <>
          <p className="muted">{t('stepup.choose')}</p>
          <div className="row">
            {offer.methods.map((m) => (
              <button key={m} type="button" onClick={() => void start(m)} disabled={busy} data-testid={`step-up-method-${m}`}>
                {t(`stepup.method.${m}`)}
              </button>
            ))}
          </div>
        </>
      ) : challenge.method === 'passkey' ? (
        <div className="row">
          <span className="muted">{busy ? t('stepup.passkeyWaiting') : t('stepup.passkeyHint')}</span>
          <button type="button" onClick={() => void retryPasskey()} disabled={busy} data-testid="step-up-passkey-retry">
            {t('stepup.passkeyAgain')}
          </button>
        </div>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void run(() => complete(challenge.id, { code }));
          }}
        >
          {challenge.method === 'otp' && demo !== undefined && (
            <p className="warn">
              {t('stepup.demoCode')} {demo.deliveredBy}: <strong data-testid="step-up-demo-code">{demo.code}</strong>
            </p>
          )}
          <Field
            label={challenge.method === 'otp' ? t('stepup.otpLabel') : t('stepup.totpLabel')}
            name="step-up-code"
            value={code}
            onChange={(v) => setCode(v.replace(/\D/g, '').slice(0, 6))}
            inputMode="numeric"
            autoComplete="one-time-code"
          />
          <button type="submit" disabled={busy || code.length !== 6} data-testid="step-up-submit">
            {t('common.confirm')}
          </button>
        </form>
      )}
      {problem !== undefined && (
        <p className={deadEnd ? 'error' : 'warn'} role="alert" data-testid="step-up-problem" data-problem={problem.key}>
          {t(problem.key)}
          {problem.attemptsRemaining !== undefined && ` ${t('stepup.attemptsLeft').replace('{n}', String(problem.attemptsRemaining))}`}
        </p>
      )}
      <ErrorBox error={error} />
      <div className="row">
        {deadEnd && (
          <button type="button" onClick={() => void restart()} disabled={busy} data-testid="step-up-restart">
            {t('stepup.restart')}
          </button>
        )}
        <button type="button" className="secondary" onClick={onCancel} disabled={busy}>
          {t('common.cancel')}
        </button>
      </div>
    </div>
  );
}
