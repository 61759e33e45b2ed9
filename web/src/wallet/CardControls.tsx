import { useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, useAction } from '../shared/ui.tsx';

/** Who suspended a token (the hub's `suspendedBy`): this wallet on the cardholder's word, the bank, or the card itself. */
export type SuspendedBy = 'wallet' | 'issuer' | 'card' | string | null;

/**
 * Why a suspended card cannot pay, in words: frozen here by the cardholder (they can unfreeze it), frozen by the bank
 * for this wallet, or the card itself frozen at the bank (every wallet's token stops; only the bank lifts it).
 */
export function suspendedWhyKey(by: SuspendedBy): string {
  if (by === 'wallet') return 'card.why.wallet';
  if (by === 'card') return 'card.why.card';
  return 'card.why.issuer';
}

interface ControlledToken {
  readonly tokenRef: string;
  readonly status: string;
  readonly suspendedBy: SuspendedBy;
  readonly cardLast4: string;
}

/**
 * The cardholder's own controls of a card in this wallet: freeze (the token stops paying here; the bank is told by
 * webhook, token.suspended), unfreeze what they froze themselves, and remove the card from this wallet (the token is
 * deleted; the card itself and its tokens in other wallets stay). Removing is asked first.
 */
export function CardControls({ api, token, onChange }: { api: Api; token: ControlledToken; onChange: () => void }) {
  const { t } = useI18n();
  const [confirming, setConfirming] = useState<'suspend' | 'delete' | undefined>();
  const act = useAction(async (action: 'suspend' | 'resume' | 'delete') => {
    await api.post(`/v1/wallet/tokens/${encodeURIComponent(token.tokenRef)}/${action}`);
    setConfirming(undefined);
    onChange();
  });
  const question = (confirming === 'delete' ? t('card.removeConfirm') : t('card.freezeConfirm')).replace('{last4}', token.cardLast4);
  return (
    <div data-testid="card-controls" style={{ marginBottom: '0.5rem' }}>
      {token.status === 'suspended' && (
        <p className="warn" data-testid="card-suspended" data-by={token.suspendedBy ?? ''}>
          {t(suspendedWhyKey(token.suspendedBy))}
        </p>
      )}
      {confirming === undefined ? (
        <div className="row">
          {token.status === 'active' && (
            <button type="button" onClick={() => setConfirming('suspend')} data-testid="card-freeze">
              {t('card.freeze')}
            </button>
          )}
          {token.status === 'suspended' && token.suspendedBy === 'wallet' && (
            <button type="button" onClick={() => void act.run('resume')} disabled={act.busy} data-testid="card-unfreeze">
              {t('card.unfreeze')}
            </button>
          )}
          <button type="button" onClick={() => setConfirming('delete')} data-testid="card-remove">
            {t('card.remove')}
          </button>
        </div>
      ) : (
        <div className="row" role="group" aria-label={question}>
          <span>{question}</span>
          <button type="button" onClick={() => void act.run(confirming)} disabled={act.busy} data-testid="card-confirm-yes">
            {confirming === 'delete' ? t('card.removeYes') : t('card.freezeYes')}
          </button>
          <button type="button" onClick={() => setConfirming(undefined)} disabled={act.busy}>
            {t('common.cancel')}
          </button>
        </div>
      )}
      <ErrorBox error={act.error} />
    </div>
  );
}
