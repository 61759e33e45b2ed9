import { useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Field, Section, useAction, useLoad } from '../shared/ui.tsx';
import { CurrencySelect, useCurrencies, useCurrency, type MoneyWire } from './accounts.tsx';
import type { WalletSession } from './session.ts';

interface Pot { id: string; name: string; balance: MoneyWire; goal: MoneyWire | null; goalReached: boolean; lockedUntil: string | null; locked: boolean; own: boolean; holderParticipantId: string }
interface Coupon { id: string; merchantName: string; name: string; kind: 'amount' | 'percent'; amountOff: MoneyWire | null; percentOff: number | null; minSpend: MoneyWire; perCustomerLimit: number; expiresAt: string }
interface KeptCoupon { id: string; coupon: Coupon; uses: number; usesLeft: number; usable: boolean }
interface Membership { id: string; program: { name: string; merchantName: string }; memberNumber: string }

/**
 * Savings pots kept at the hub (GET/POST /v1/pots): money moved from the customer's account into named pots and back,
 * a goal, an optional lock; pots held at a wallet the customer linked with consent are shown read only.
 */
export function Pots({ api, session }: { api: Api; session: WalletSession }) {
  const { t, money, date } = useI18n();
  const currencies = useCurrencies(api, session);
  const [currency, setCurrency] = useCurrency(currencies);
  const pots = useLoad(async () => (await api.get<{ items: Pot[] }>(`/v1/pots?customerId=${encodeURIComponent(session.customerId)}`)).items, [api]);
  const [name, setName] = useState('');
  const [goal, setGoal] = useState('');
  const [lockedUntil, setLockedUntil] = useState('');
  const [amounts, setAmounts] = useState<Record<string, string>>({});
  const create = useAction(async () => {
    await api.post('/v1/pots', { customerId: session.customerId, name: name.trim(), currency, ...(goal.trim() !== '' ? { goal: goal.trim() } : {}), ...(lockedUntil !== '' ? { lockedUntil: new Date(`${lockedUntil}T00:00:00Z`).toISOString() } : {}) });
    setName('');
    setGoal('');
    setLockedUntil('');
    await pots.reload();
  });
  const move = useAction(async (pot: Pot, direction: 'deposits' | 'withdrawals') => {
    await api.post(`/v1/pots/${pot.id}/${direction}`, { amount: { amount: (amounts[pot.id] ?? '').trim(), currency: pot.balance.currency } });
    setAmounts({ ...amounts, [pot.id]: '' });
    await pots.reload();
  });
  return (
    <div className="grid">
      <Section title={t('pots.title')} testId="pots">
        <p className="muted">{t('pots.about')}</p>
        <ErrorBox error={pots.error ?? move.error} />
        {pots.data?.length === 0 && <p className="muted">{t('pots.none')}</p>}
        <ul className="activity">
          {(pots.data ?? []).map((p) => (
            <li key={p.id} data-testid="pot" data-pot-id={p.id} data-locked={String(p.locked)}>
              <div className="activity-row">
                <div>
                  <div className="title">{p.name}</div>
                  <div className="muted">
                    {p.goal !== null ? `${t('pots.goal')} ${money(p.goal.amount, p.goal.currency)}${p.goalReached ? ' ✓' : ''}` : ''}
                    {p.lockedUntil !== null && p.locked ? ` · ${t('pots.lockedUntil')} ${date(p.lockedUntil)}` : ''}
                    {!p.own ? ` · ${t('pots.linked')}` : ''}
                  </div>
                </div>
                <strong>{money(p.balance.amount, p.balance.currency)}</strong>
              </div>
              {p.own && (
                <div className="row">
                  <Field label={`${t('pots.amount')} (${p.balance.currency})`} name={`pot-amount-${p.id}`} value={amounts[p.id] ?? ''} onChange={(v) => setAmounts({ ...amounts, [p.id]: v })} inputMode="decimal" />
                  <button type="button" disabled={move.busy} data-testid="pot-in" onClick={() => void move.run(p, 'deposits')}>
                    {t('pots.in')}
                  </button>
                  <button type="button" className="secondary" disabled={move.busy || p.locked} data-testid="pot-out" onClick={() => void move.run(p, 'withdrawals')}>
                    {t('pots.out')}
                  </button>
                </div>
              )}
            </li>
          ))}
        </ul>
      </Section>
      <Section title={t('pots.new')}>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void create.run();
          }}
        >
          {currencies.length > 1 && <CurrencySelect name="pot-currency" currencies={currencies} value={currency} onChange={setCurrency} />}
          <Field label={t('pots.name')} name="pot-name" value={name} onChange={setName} required />
          <div className="row">
            <Field label={`${t('pots.goal')} (${currency})`} name="pot-goal" value={goal} onChange={setGoal} inputMode="decimal" />
            <Field label={t('pots.lockedUntil')} name="pot-lock" type="date" value={lockedUntil} onChange={setLockedUntil} />
          </div>
          <button type="submit" disabled={create.busy || name.trim() === ''} data-testid="pot-create">
            {t('pots.create')}
          </button>
        </form>
        <ErrorBox error={create.error} />
      </Section>
    </div>
  );
}

/** Coupons and membership cards: merchants' offers to keep, and what the customer keeps (applied when they pay). */
export function Coupons({ api, session }: { api: Api; session: WalletSession }) {
  const { t, money, date } = useI18n();
  const kept = useLoad(async () => api.get<{ coupons: KeptCoupon[]; memberships: Membership[] }>(`/v1/wallet/coupons?customerId=${encodeURIComponent(session.customerId)}`), [api]);
  const offers = useLoad(async () => api.get<{ coupons: Coupon[]; membershipPrograms: { id: string; name: string; merchantName: string }[] }>('/v1/offers'), [api]);
  const keep = useAction(async (couponId: string) => {
    await api.post('/v1/wallet/coupons', { customerId: session.customerId, couponId });
    await kept.reload();
  });
  const join = useAction(async (programId: string) => {
    await api.post('/v1/wallet/memberships', { customerId: session.customerId, programId });
    await kept.reload();
  });
  const what = (c: Coupon) => `${c.kind === 'percent' ? `${c.percentOff ?? 0}% ${t('coupons.off')}` : `${money(c.amountOff?.amount ?? '0', c.amountOff?.currency ?? '')} ${t('coupons.off')}`}${Number(c.minSpend.amount) > 0 ? ` · ${t('coupons.minSpend')} ${money(c.minSpend.amount, c.minSpend.currency)}` : ''}`;
  const keptIds = new Set((kept.data?.coupons ?? []).map((k) => k.coupon.id));
  return (
    <div className="grid">
      <CardRewards api={api} session={session} />
      <TargetedOffers api={api} session={session} onAccepted={kept.reload} />
      <Section title={t('coupons.kept')} testId="coupons">
        <p className="muted">{t('coupons.about')}</p>
        <ErrorBox error={kept.error} />
        {kept.data?.coupons.length === 0 && <p className="muted">{t('coupons.none')}</p>}
        <ul className="activity">
          {(kept.data?.coupons ?? []).map((k) => (
            <li key={k.id} data-testid="kept-coupon" data-usable={String(k.usable)}>
              <div className="activity-row">
                <div>
                  <div className="title">
                    {k.coupon.merchantName} · {k.coupon.name}
                  </div>
                  <div className="muted">
                    {what(k.coupon)} · {t('coupons.expires')} {date(k.coupon.expiresAt)}
                  </div>
                </div>
                <span className={k.usable ? 'ok' : 'muted'}>{k.usable ? `${t('coupons.usesLeft')} ${k.usesLeft}` : t('coupons.used')}</span>
              </div>
            </li>
          ))}
        </ul>
        {(kept.data?.memberships ?? []).length > 0 && (
          <ul className="activity" aria-label={t('coupons.memberships')}>
            {(kept.data?.memberships ?? []).map((m) => (
              <li key={m.id} data-testid="membership">
                <div className="activity-row">
                  <div className="title">
                    {m.program.merchantName} · {m.program.name}
                  </div>
                  <span className="mono">{m.memberNumber}</span>
                </div>
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Section title={t('coupons.offers')}>
        <ErrorBox error={offers.error ?? keep.error ?? join.error} />
        <ul className="activity">
          {(offers.data?.coupons ?? []).map((c) => (
            <li key={c.id} data-testid="offer">
              <div className="activity-row">
                <div>
                  <div className="title">
                    {c.merchantName} · {c.name}
                  </div>
                  <div className="muted">{what(c)}</div>
                </div>
                <button type="button" disabled={keep.busy || keptIds.has(c.id)} onClick={() => void keep.run(c.id)}>
                  {keptIds.has(c.id) ? '✓' : t('coupons.keep')}
                </button>
              </div>
            </li>
          ))}
          {(offers.data?.membershipPrograms ?? []).map((p) => (
            <li key={p.id} data-testid="program">
              <div className="activity-row">
                <div className="title">
                  {p.merchantName} · {p.name}
                </div>
                <button type="button" className="secondary" disabled={join.busy} onClick={() => void join.run(p.id)}>
                  {t('coupons.join')}
                </button>
              </div>
            </li>
          ))}
        </ul>
      </Section>
    </div>
  );
}

interface TargetedOffer { id: string; name: string; minSpend: MoneyWire; windowDays: number; mcc: string | null; coupon: Coupon; accepted: boolean }

/**
 * Offers targeted by the customer's own card spending: their consent (POST /v1/wallet/targeted-offers/consent, off by
 * default) and, only while it is on, the offers they are eligible for, accepted into their coupons.
 */
function TargetedOffers({ api, session, onAccepted }: { api: Api; session: WalletSession; onAccepted: () => Promise<void> }) {
  const { t, money } = useI18n();
  const q = `customerId=${encodeURIComponent(session.customerId)}`;
  const offers = useLoad(async () => api.get<{ consent: boolean; items: TargetedOffer[] }>(`/v1/wallet/targeted-offers?${q}`), [api]);
  const consent = useAction(async (on: boolean) => {
    await api.post('/v1/wallet/targeted-offers/consent', { customerId: session.customerId, consent: on });
    await offers.reload();
  });
  const accept = useAction(async (offerId: string) => {
    await api.post(`/v1/wallet/targeted-offers/${encodeURIComponent(offerId)}/accept`, { customerId: session.customerId });
    await offers.reload();
    await onAccepted();
  });
  const on = offers.data?.consent === true;
  return (
    <Section title={t('targeted.title')} testId="targeted-offers">
      <p className="muted">{t('targeted.about')}</p>
      <label>
        <input type="checkbox" name="targeted-consent" data-testid="targeted-consent" checked={on} disabled={consent.busy || offers.data === undefined} onChange={(e) => void consent.run(e.target.checked)} /> {t('targeted.consent')}
      </label>
      <ErrorBox error={offers.error ?? consent.error ?? accept.error} />
      {offers.data !== undefined && !on && <p className="muted">{t('targeted.off')}</p>}
      {on && offers.data?.items.length === 0 && <p className="muted">{t('targeted.none')}</p>}
      <ul className="activity">
        {(offers.data?.items ?? []).map((o) => (
          <li key={o.id} data-testid="targeted-offer">
            <div className="activity-row">
              <div>
                <div className="title">
                  {o.coupon.merchantName} · {o.coupon.name}
                </div>
                <div className="muted">
                  {o.name} · {t('targeted.condition')} {money(o.minSpend.amount, o.minSpend.currency)} / {o.windowDays} {t('targeted.days')}
                </div>
              </div>
              <button type="button" disabled={accept.busy || o.accepted} onClick={() => void accept.run(o.id)}>
                {o.accepted ? t('targeted.accepted') : t('targeted.accept')}
              </button>
            </div>
          </li>
        ))}
      </ul>
    </Section>
  );
}

interface OfferPreview { coupon: { name: string; discount: MoneyWire } | null; amountToPay: MoneyWire; memberships: Membership[] }

/**
 * Before the customer confirms a merchant-code payment: the coupon the hub will apply (POST /v1/wallet/offers/preview,
 * the same choice the payment makes) and the amount to pay, with their membership card there. Shows nothing when no
 * coupon or card applies, or the amount is not typed yet.
 */
export function OfferLine({ api, session, payload, amount }: { api: Api; session: WalletSession; payload: string; amount: MoneyWire | null }) {
  const { t, money } = useI18n();
  const ready = amount === null || /^[0-9]+(\.[0-9]+)?$/.test(amount.amount.trim());
  const offer = useLoad(
    async () =>
      ready ? api.post<OfferPreview>('/v1/wallet/offers/preview', { customerId: session.customerId, payload, ...(amount !== null ? { amount: { amount: amount.amount.trim(), currency: amount.currency } } : {}) }) : undefined,
    [api, payload, amount?.amount, amount?.currency],
  );
  const o = offer.data;
  if (o === undefined || (o.coupon === null && o.memberships.length === 0)) return null;
  return (
    <div data-testid="offer-preview">
      {o.coupon !== null && (
        <p className="ok">
          {t('pay.coupon')}: {o.coupon.name} −{money(o.coupon.discount.amount, o.coupon.discount.currency)} · {t('pay.toPay')} <strong data-testid="offer-to-pay">{money(o.amountToPay.amount, o.amountToPay.currency)}</strong>
        </p>
      )}
      {o.memberships.map((m) => (
        <p key={m.id} className="muted">
          {m.program.name} · <span className="mono">{m.memberNumber}</span>
        </p>
      ))}
    </div>
  );
}

interface RewardBalance { points: string; cashback: MoneyWire[] }

/** Each card's rewards as its bank keeps them (GET /v1/wallet/tokens/{tokenRef}/rewards): the same in every wallet. */
function CardRewards({ api, session }: { api: Api; session: WalletSession }) {
  const { t, money } = useI18n();
  const rewards = useLoad(async () => {
    const tokens = (await api.get<{ items: { tokenRef: string; cardLast4: string; brand: string; status: string }[] }>(`/v1/wallet/tokens?customerId=${encodeURIComponent(session.customerId)}&limit=100`)).items.filter((x) => x.status !== 'deleted');
    return Promise.all(tokens.map(async (x) => ({ ...x, balance: await api.get<RewardBalance>(`/v1/wallet/tokens/${encodeURIComponent(x.tokenRef)}/rewards`) })));
  }, [api]);
  const earning = (rewards.data ?? []).filter((r) => r.balance.points !== '0' || r.balance.cashback.some((c) => Number(c.amount) !== 0));
  if (earning.length === 0) return null;
  return (
    <Section title={t('rewards.title')} testId="card-rewards">
      <ul className="activity">
        {earning.map((r) => (
          <li key={r.tokenRef} data-testid="card-reward">
            <div className="activity-row">
              <div className="title">
                {r.brand} •••• {r.cardLast4}
              </div>
              <span>
                {r.balance.points} {t('rewards.points')}
                {r.balance.cashback.map((c) => ` · ${t('rewards.cashback')} ${money(c.amount, c.currency)}`).join('')}
              </span>
            </div>
          </li>
        ))}
      </ul>
    </Section>
  );
}
