import { useEffect, useMemo, useState } from 'react';
import { browserSupportsWebAuthn, startRegistration, WebAuthnError, type PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/browser';
import { ApiError, createApi, type Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { CodeForm, ConfirmBar, ErrorBox, Section, Select, useAction, useLoad } from '../shared/ui.tsx';
import type { WalletSession } from './session.ts';
import { Aliases, BankAccounts } from './More.tsx';
import { BankAccess } from './BankAccess.tsx';

/**
 * "我的 / Me": the signed-in customer's own settings: passkeys for approving payments (step-up), and links to their
 * records at other banks and wallets (customer links: consent on both sides, revocable at any time).
 */
export function Me({ api, session }: { api: Api; session: WalletSession }) {
  const { t } = useI18n();
  return (
    <div className="grid">
      <Section title={t('me.profile')} testId="profile">
        <p>
          <strong>{session.customerName}</strong> · {session.walletName}
        </p>
        <p className="muted mono">{session.customerId}</p>
      </Section>
      <BankAccounts api={api} session={session} />
      <BankAccess api={api} session={session} />
      <Aliases api={api} session={session} />
      <Passkeys api={api} session={session} />
      <CustomerLinks api={api} session={session} />
    </div>
  );
}

interface Passkey {
  readonly credentialId: string;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
}

const customerPath = (session: WalletSession) => `/v1/step-up/customers/${encodeURIComponent(session.customerId)}/passkeys`;

function Passkeys({ api, session }: { api: Api; session: WalletSession }) {
  const { t, date } = useI18n();
  const list = useLoad(async () => (await api.get<{ items: Passkey[] }>(customerPath(session))).items, [api]);
  const [added, setAdded] = useState(false);
  const [problem, setProblem] = useState<string | undefined>();
  const supported = browserSupportsWebAuthn();
  const register = useAction(async () => {
    setAdded(false);
    setProblem(undefined);
    const { registrationId, options } = await api.post<{ registrationId: string; options: PublicKeyCredentialCreationOptionsJSON }>(`${customerPath(session)}/options`);
    let response;
    try {
      response = await startRegistration({ optionsJSON: options });
    } catch (e) {
      // The person closed the browser's dialog, or this page is not on the address passkeys are registered for.
      if (e instanceof WebAuthnError && (e.code === 'ERROR_INVALID_DOMAIN' || e.code === 'ERROR_INVALID_RP_ID')) setProblem('passkey.wrongAddress');
      else if (e instanceof WebAuthnError && e.code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED') setProblem('passkey.already');
      else if (e instanceof WebAuthnError || (e instanceof Error && e.name === 'NotAllowedError')) setProblem('passkey.cancelled');
      else throw e;
      return;
    }
    await api.post(customerPath(session), { registrationId, response });
    setAdded(true);
    await list.reload();
  });
  const items = list.data ?? [];
  return (
    <Section title={t('passkey.title')} testId="passkeys">
      <p className="muted">{t('passkey.hint')}</p>
      <ErrorBox error={list.error ?? register.error} />
      {list.data !== undefined && items.length === 0 && <p className="muted">{t('passkey.none')}</p>}
      {items.map((k) => (
        <div key={k.credentialId} className="list-row row" style={{ justifyContent: 'space-between' }} data-testid="passkey-row">
          <span>
            🔑 <span className="mono">…{k.credentialId.slice(-8)}</span>
          </span>
          <span className="muted">
            {t('passkey.created')} {date(k.createdAt)} · {t('passkey.lastUsed')} {k.lastUsedAt === null ? t('passkey.never') : date(k.lastUsedAt)}
          </span>
        </div>
      ))}
      {supported ? (
        <button type="button" onClick={() => void register.run()} disabled={register.busy} data-testid="passkey-add">
          {t('passkey.add')}
        </button>
      ) : (
        <p className="warn">{t('passkey.unsupported')}</p>
      )}
      {problem !== undefined && (
        <p className="warn" role="alert">
          {t(problem)}
        </p>
      )}
      {added && (
        <p className="ok" data-testid="passkey-added">
          {t('passkey.added')} ✓
        </p>
      )}
    </Section>
  );
}

interface CustomerLink {
  readonly id: string;
  readonly other: { readonly participantId: string; readonly participantName: string };
  readonly status: 'active' | 'revoked';
  readonly createdAt: string;
  readonly revokedAt: string | null;
}

interface Consent {
  readonly id: string;
  readonly otherParticipantId: string;
  readonly expiresAt: string;
}

interface Directory {
  readonly wallets: readonly { readonly participantId: string; readonly name: string }[];
  readonly banks: readonly { readonly participantId: string; readonly name: string }[];
}

/** Codes of a consent that cannot be confirmed any more: ask for a new code. */
const CONSENT_DEAD_ENDS: Readonly<Record<string, string>> = {
  customer_link_consent_expired: 'links.expired',
  customer_link_consent_locked: 'links.locked',
};

function CustomerLinks({ api, session }: { api: Api; session: WalletSession }) {
  const { t, date } = useI18n();
  const links = useLoad(async () => (await api.get<{ items: CustomerLink[] }>(`/v1/customer-links?customerId=${encodeURIComponent(session.customerId)}`)).items, [api]);
  // The demo's banks and wallets (a real wallet knows the participants it offers); never this wallet itself.
  const anonymous = useMemo(() => createApi(async () => undefined), []);
  const directory = useLoad(() => anonymous.get<Directory>('/demo/v1/directory'), []);
  const others = [...(directory.data?.banks ?? []), ...(directory.data?.wallets ?? [])].filter((p) => p.participantId !== session.participantId);
  const [participantId, setParticipantId] = useState('');
  useEffect(() => {
    if (participantId === '' && others[0] !== undefined) setParticipantId(others[0].participantId);
  }, [participantId, others]);
  const [consent, setConsent] = useState<Consent | undefined>();
  const [demo, setDemo] = useState<{ code: string; deliveredBy: string } | undefined>();
  const [code, setCode] = useState('');
  const [problem, setProblem] = useState<{ key: string; attemptsRemaining?: number; deadEnd: boolean } | undefined>();
  const [linkedTo, setLinkedTo] = useState<string | undefined>();
  const [confirmRevoke, setConfirmRevoke] = useState<string | undefined>();

  const known = (e: unknown): boolean => {
    if (!(e instanceof ApiError)) return false;
    if (e.code === 'customer_link_code_invalid') {
      const left = typeof e.details === 'object' && e.details !== null && 'attemptsRemaining' in e.details && typeof e.details.attemptsRemaining === 'number' ? e.details.attemptsRemaining : undefined;
      setProblem({ key: 'links.wrongCode', ...(left !== undefined ? { attemptsRemaining: left } : {}), deadEnd: left === 0 });
      return true;
    }
    const deadEnd = CONSENT_DEAD_ENDS[e.code];
    if (deadEnd !== undefined) {
      setProblem({ key: deadEnd, deadEnd: true });
      return true;
    }
    if (e.code === 'link_customer_not_found') setProblem({ key: 'links.noRecord', deadEnd: false });
    else if (e.code === 'customer_link_exists') setProblem({ key: 'links.exists', deadEnd: false });
    else return false;
    return true;
  };

  const request = useAction(async () => {
    setProblem(undefined);
    setLinkedTo(undefined);
    setDemo(undefined);
    setCode('');
    try {
      const c = await api.post<Consent>('/v1/customer-links', { customerId: session.customerId, participantId });
      setConsent(c);
      // Demo: the code the other demo bank or wallet gives its customer once it has authenticated them.
      try {
        setDemo(await api.get<{ code: string; deliveredBy: string }>(`/demo/v1/codes/customer-link-consents/${encodeURIComponent(c.id)}`));
      } catch {
        setDemo(undefined);
      }
    } catch (e) {
      if (!known(e)) throw e;
    }
  });
  const confirm = useAction(async () => {
    if (consent === undefined) return;
    setProblem(undefined);
    try {
      const link = await api.post<CustomerLink>(`/v1/customer-links/consents/${encodeURIComponent(consent.id)}/confirm`, { code });
      setConsent(undefined);
      setDemo(undefined);
      setCode('');
      setLinkedTo(link.other.participantName);
      await links.reload();
    } catch (e) {
      if (!known(e)) throw e;
    }
  });
  const revoke = useAction(async (linkId: string) => {
    await api.post(`/v1/customer-links/${encodeURIComponent(linkId)}/revoke`);
    setConfirmRevoke(undefined);
    await links.reload();
  });
  const startOver = () => {
    setConsent(undefined);
    setDemo(undefined);
    setProblem(undefined);
    setCode('');
  };

  const items = links.data ?? [];
  const otherName = (id: string) => others.find((p) => p.participantId === id)?.name ?? id;
  return (
    <Section
      title={t('links.title')}
      testId="customer-links"
      actions={
        <button type="button" className="secondary" onClick={() => void links.reload()}>
          {t('common.refresh')}
        </button>
      }
    >
      <p className="muted">{t('links.hint')}</p>
      <ErrorBox error={links.error ?? directory.error ?? revoke.error} />
      {links.data !== undefined && items.length === 0 && <p className="muted">{t('links.none')}</p>}
      {items.map((l) => (
        <div key={l.id} className="list-row" data-testid="customer-link" data-link-id={l.id} data-status={l.status} data-participant={l.other.participantId}>
          <div className="row" style={{ justifyContent: 'space-between' }}>
            <div>
              <div>
                <strong>{l.other.participantName}</strong> <span className={`pill ${l.status}`}>{t(`links.status.${l.status}`)}</span>
              </div>
              <div className="muted">{l.status === 'revoked' && l.revokedAt !== null ? `${t('links.revokedOn')} ${date(l.revokedAt)}` : `${t('links.linkedOn')} ${date(l.createdAt)}`}</div>
            </div>
            {l.status === 'active' && confirmRevoke !== l.id && (
              <button type="button" className="secondary" onClick={() => setConfirmRevoke(l.id)} data-testid="link-revoke">
                {t('links.revoke')}
              </button>
            )}
          </div>
          {/* Revoking takes effect at once on both sides (cards added through the link stay; new ones need a new link): asked first. */}
          {l.status === 'active' && confirmRevoke === l.id && (
            <ConfirmBar question={t('links.revokeConfirm').replace('{name}', l.other.participantName)} yes={t('links.revokeYes')} busy={revoke.busy} onYes={() => void revoke.run(l.id)} onCancel={() => setConfirmRevoke(undefined)} yesTestId="link-revoke-yes" />
          )}
        </div>
      ))}
      <h3>{t('links.add')}</h3>
      {consent === undefined ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void request.run();
          }}
        >
          <Select label={t('links.at')} name="link-participant" value={participantId} onChange={setParticipantId} options={others.map((p) => ({ value: p.participantId, label: p.name }))} />
          <button type="submit" disabled={request.busy || participantId === ''} data-testid="link-request">
            {t('links.request')}
          </button>
        </form>
      ) : (
        <CodeForm
          sent={t('links.codeSent').replace('{name}', otherName(consent.otherParticipantId))}
          demo={demo === undefined ? undefined : { label: `${t('links.demoCode')} ${demo.deliveredBy}:`, code: demo.code, testId: 'link-demo-code' }}
          name="link-code"
          code={code}
          onCode={setCode}
          busy={confirm.busy}
          onSubmit={() => void confirm.run()}
          onCancel={startOver}
          cancelLabel={problem?.deadEnd === true ? t('links.newCode') : undefined}
          deadEnd={problem?.deadEnd === true}
          testId="link-consent"
          submitTestId="link-confirm"
        />
      )}
      {problem !== undefined && (
        <p className={problem.deadEnd ? 'error' : 'warn'} role="alert" data-testid="link-problem">
          {t(problem.key)}
          {problem.attemptsRemaining !== undefined && ` ${t('stepup.attemptsLeft').replace('{n}', String(problem.attemptsRemaining))}`}
        </p>
      )}
      <ErrorBox error={request.error ?? confirm.error} />
      {linkedTo !== undefined && (
        <p className="ok" data-testid="link-made">
          {t('links.made')}: {linkedTo} ✓
        </p>
      )}
    </Section>
  );
}
