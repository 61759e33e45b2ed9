import { useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Field, Section, Select, useAction, useLoad } from '../shared/ui.tsx';

/**
 * The issuer desk: a bank's cards (status in words, a search), freeze / unfreeze / replace / cancel after a
 * confirmation, and per card its tokens across wallets with suspend / resume / revoke, and its controls. Used by the
 * /issuer page (a demo bank's session) and by the console's issuer view (the operator opening a demo bank).
 */
interface Card { id: string; maskedNumber: string; last4: string; brand: string; status: string; currency: string; customerId: string; expiry: string; controls?: { perTransactionMax?: string; dailyLimit?: string } | null; createdAt: string }
interface TokenEntry { id: string; walletName: string; walletParticipantId: string; tokenLast4: string; status: string; suspendedBy?: string | null; deviceId?: string | null; addedAt: string; lastUsedAt?: string | null }

type CardAction = 'freeze' | 'unfreeze' | 'replace' | 'cancel';
type TokenAction = 'suspend' | 'resume' | 'delete';

/** A status code in words (status.<code>), or the code itself when the page has no word for it. */
function useStatusWord() {
  const { t } = useI18n();
  return (s: string) => {
    const w = t(`status.${s}`);
    return w === `status.${s}` ? s : w;
  };
}

export function IssuerDesk({ api, name }: { api: Api; name: string }) {
  const { t, date } = useI18n();
  const word = useStatusWord();
  const cards = useLoad(async () => (await api.get<{ items: Card[] }>('/v1/issuer/cards?limit=100')).items, [api]);
  const [open, setOpen] = useState<string | undefined>();
  const [query, setQuery] = useState('');
  const [confirming, setConfirming] = useState<{ id: string; action: CardAction } | undefined>();
  const act = useAction(async (id: string, action: CardAction) => {
    await api.post(`/v1/issuer/cards/${id}/${action}`);
    setConfirming(undefined);
    await cards.reload();
  });
  const q = query.trim().toLowerCase();
  const shown = (cards.data ?? []).filter((c) => q === '' || [c.maskedNumber, c.last4, c.id, c.customerId, c.brand, word(c.status)].some((x) => x.toLowerCase().includes(q)));
  return (
    <Section
      title={`${t('iss.cards')} — ${name}`}
      testId="issuer-cards"
      actions={
        <button type="button" className="secondary" onClick={() => void cards.reload()}>
          {t('common.refresh')}
        </button>
      }
    >
      <Field label={t('common.search')} name="card-search" value={query} onChange={setQuery} />
      <ErrorBox error={cards.error ?? act.error} />
      {cards.data === undefined && cards.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
      {cards.data?.length === 0 && <p className="muted">{t('common.none')}</p>}
      <ul className="activity">
        {shown.map((c) => (
          <li key={c.id} data-testid="issuer-card" data-card-id={c.id} data-status={c.status}>
            <div className="activity-row">
              <div>
                <div className="title mono">
                  {c.brand} {c.maskedNumber}
                </div>
                <div className="sub mono">
                  {c.id} · {c.customerId}
                </div>
                <div className="sub">
                  {t('iss.expiry')} {c.expiry} · {date(c.createdAt, false)}
                </div>
              </div>
              <div className="amt">
                <span className={`pill ${c.status}`}>{word(c.status)}</span>
              </div>
            </div>
            <div className="row" style={{ marginTop: '0.4rem' }}>
              <button type="button" className="secondary" aria-expanded={open === c.id} onClick={() => setOpen(open === c.id ? undefined : c.id)} data-testid="card-tokens">
                {t('iss.tokens')}
              </button>
              {c.status === 'active' && (
                <button type="button" className="secondary" onClick={() => setConfirming({ id: c.id, action: 'freeze' })} data-testid="card-freeze">
                  {t('iss.freeze')}
                </button>
              )}
              {c.status === 'frozen' && (
                <button type="button" onClick={() => setConfirming({ id: c.id, action: 'unfreeze' })} data-testid="card-unfreeze">
                  {t('iss.unfreeze')}
                </button>
              )}
              {(c.status === 'active' || c.status === 'frozen' || c.status === 'lost') && (
                <button type="button" className="secondary" onClick={() => setConfirming({ id: c.id, action: 'replace' })} data-testid="card-replace">
                  {t('iss.replace')}
                </button>
              )}
              {c.status !== 'cancelled' && c.status !== 'replaced' && (
                <button type="button" className="secondary" onClick={() => setConfirming({ id: c.id, action: 'cancel' })} data-testid="card-cancel">
                  {t('iss.cancel')}
                </button>
              )}
            </div>
            {confirming?.id === c.id && (
              <div role="group" aria-label={t(`iss.confirm.${confirming.action}`)} className="warn" data-testid="card-confirm">
                <p>{t(`iss.confirm.${confirming.action}`)}</p>
                <div className="row">
                  <button type="button" onClick={() => void act.run(c.id, confirming.action)} disabled={act.busy} data-testid="card-confirm-yes">
                    {t('common.confirm')}
                  </button>
                  <button type="button" className="secondary" onClick={() => setConfirming(undefined)}>
                    {t('common.cancel')}
                  </button>
                </div>
              </div>
            )}
            {open === c.id && <CardDetail api={api} card={c} onChange={() => void cards.reload()} />}
          </li>
        ))}
      </ul>
    </Section>
  );
}

function CardDetail({ api, card, onChange }: { api: Api; card: Card; onChange: () => void }) {
  const { t, date, money } = useI18n();
  const word = useStatusWord();
  const tokens = useLoad(async () => (await api.get<{ items: TokenEntry[] }>(`/v1/issuer/cards/${card.id}/tokens`)).items, [api, card.id]);
  const [perTx, setPerTx] = useState(card.controls?.perTransactionMax ?? '');
  const [daily, setDaily] = useState(card.controls?.dailyLimit ?? '');
  const [saved, setSaved] = useState(false);
  const [confirming, setConfirming] = useState<string | undefined>();
  const save = useAction(async () => {
    setSaved(false);
    await api.post(`/v1/issuer/cards/${card.id}/controls`, { ...(perTx !== '' ? { perTransactionMax: perTx } : {}), ...(daily !== '' ? { dailyLimit: daily } : {}) });
    setSaved(true);
    onChange();
  });
  const act = useAction(async (tokenId: string, action: TokenAction) => {
    await api.post(`/v1/issuer/cards/${card.id}/tokens/${tokenId}/${action}`);
    setConfirming(undefined);
    await tokens.reload();
  });
  return (
    <div className="card" data-testid="card-detail" style={{ marginTop: '0.5rem' }}>
      <h3>{t('iss.tokensOf')}</h3>
      <ErrorBox error={tokens.error ?? act.error} />
      {tokens.data === undefined && tokens.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
      {tokens.data?.length === 0 && <p className="muted">{t('iss.noTokens')}</p>}
      <ul className="activity">
        {(tokens.data ?? []).map((e) => (
          <li key={e.id} className="activity-row" data-testid="card-token" data-status={e.status}>
            <div>
              <div className="title">
                {e.walletName} …{e.tokenLast4}
              </div>
              <div className="sub">
                {t('iss.added')} {date(e.addedAt)}
                {e.lastUsedAt !== null && e.lastUsedAt !== undefined ? ` · ${t('passkey.lastUsed')} ${date(e.lastUsedAt)}` : ''}
              </div>
              <div className="row">
                {e.status === 'active' && (
                  <button type="button" className="secondary" onClick={() => void act.run(e.id, 'suspend')} disabled={act.busy} data-testid="token-suspend">
                    {t('iss.suspendToken')}
                  </button>
                )}
                {e.status === 'suspended' && (
                  <button type="button" onClick={() => void act.run(e.id, 'resume')} disabled={act.busy} data-testid="token-resume">
                    {t('iss.resumeToken')}
                  </button>
                )}
                {e.status !== 'deleted' &&
                  (confirming === e.id ? (
                    <span role="group" aria-label={t('iss.confirm.revokeToken')} className="row">
                      <button type="button" onClick={() => void act.run(e.id, 'delete')} disabled={act.busy} data-testid="token-revoke-yes">
                        {t('iss.revokeToken')}
                      </button>
                      <button type="button" className="secondary" onClick={() => setConfirming(undefined)}>
                        {t('common.cancel')}
                      </button>
                    </span>
                  ) : (
                    <button type="button" className="secondary" onClick={() => setConfirming(e.id)} data-testid="token-revoke">
                      {t('iss.revokeToken')}
                    </button>
                  ))}
              </div>
            </div>
            <div className="amt">
              <span className={`pill ${e.status}`}>{word(e.status)}</span>
            </div>
          </li>
        ))}
      </ul>
      <PushToWallet api={api} card={card} onPushed={() => void tokens.reload()} />
      <h3>{t('iss.controls')}</h3>
      <form
        onSubmit={(ev) => {
          ev.preventDefault();
          void save.run();
        }}
      >
        <div className="row">
          <Field label={`${t('iss.perTx')} (${card.currency})`} name="perTx" value={perTx} onChange={setPerTx} inputMode="decimal" />
          <Field label={`${t('iss.daily')} (${card.currency})`} name="daily" value={daily} onChange={setDaily} inputMode="decimal" />
        </div>
        <button type="submit" disabled={save.busy} data-testid="controls-save">
          {t('iss.saveControls')}
        </button>
      </form>
      <ErrorBox error={save.error} />
      {saved && (
        <p className="ok" role="status">
          {t('common.done')} {perTx !== '' ? `· ${t('iss.perTx')} ${money(perTx, card.currency)}` : ''}
        </p>
      )}
    </div>
  );
}

/**
 * Push provisioning, as the bank's app does it: "add to wallet X" for this card, the cardholder having asked for it.
 * The hub answers a one-time receipt; the app hands it to the wallet app (here: a link to the reference wallet page,
 * with the receipt in the fragment, which browsers never send to a server).
 */
function PushToWallet({ api, card, onPushed }: { api: Api; card: Card; onPushed: () => void }) {
  const { t, date } = useI18n();
  const wallets = useLoad(async () => (await api.get<{ wallets: { participantId: string; name: string }[] }>('/demo/v1/directory')).wallets, [api]);
  const [wallet, setWallet] = useState('');
  const [consent, setConsent] = useState(false);
  const [pushed, setPushed] = useState<{ receipt: string; expiresAt: string } | undefined>();
  const chosen = wallet !== '' ? wallet : (wallets.data?.[0]?.participantId ?? '');
  const push = useAction(async () => {
    setPushed(undefined);
    setPushed(await api.post<{ receipt: string; expiresAt: string }>(`/v1/issuer/cards/${card.id}/push-provisionings`, { walletParticipantId: chosen, cardholderConsent: consent }));
    setConsent(false);
    onPushed();
  });
  if (card.status !== 'active') return null;
  return (
    <div data-testid="push-to-wallet">
      <h3>{t('iss.push')}</h3>
      <form
        onSubmit={(ev) => {
          ev.preventDefault();
          void push.run();
        }}
      >
        <Select label={t('iss.pushWallet')} name="push-wallet" value={chosen} onChange={setWallet} options={(wallets.data ?? []).map((w) => ({ value: w.participantId, label: w.name }))} />
        <label className="row" style={{ marginBottom: '0.7rem' }}>
          <input type="checkbox" name="push-consent" checked={consent} onChange={(e) => setConsent(e.target.checked)} /> {t('iss.pushConsent')}
        </label>
        <button type="submit" disabled={push.busy || !consent || chosen === ''} data-testid="push-submit">
          {t('iss.pushSubmit')}
        </button>
      </form>
      <ErrorBox error={wallets.error ?? push.error} />
      {pushed !== undefined && (
        <p className="ok" role="status" data-testid="push-ready">
          {t('iss.pushReady')} {date(pushed.expiresAt)} ·{' '}
          <a href={`/wallet#push=${encodeURIComponent(pushed.receipt)}`} target="_blank" rel="noopener" data-testid="push-open">
            {t('iss.pushOpen')}
          </a>
        </p>
      )}
    </div>
  );
}
