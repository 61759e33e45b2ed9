import { useEffect, useMemo, useState } from 'react';
import QRCode from 'qrcode';
import { createApi } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, LangSwitch, Section, useLoad } from '../shared/ui.tsx';

/**
 * The hosted page of a payment link (/pay/<link id>): the merchant, the amount and a QR of this page's address, payable
 * from any wallet on the hub. The reference wallet opens it directly (/wallet?link=<id>); other wallets scan the QR
 * and pay it through the API (POST /v1/payment-links/:linkId/pay).
 */
interface PublicLink {
  id: string;
  merchant: { name: string; nameZh: string | null; city: string | null; country: string };
  amount: { amount: string; currency: string };
  description: string;
  multipleUse: boolean;
  expiresAt: string;
  state: 'open' | 'expired' | 'paid';
}

const linkId = () => decodeURIComponent(location.pathname.split('/').filter((s) => s !== '').pop() ?? '');

export function PayLinkApp() {
  const { t, money, date, lang } = useI18n();
  const api = useMemo(() => createApi(async () => undefined), []);
  const id = linkId();
  const link = useLoad(() => api.get<PublicLink>(`/v1/public/payment-links/${encodeURIComponent(id)}`), [id]);
  const [qr, setQr] = useState<string | undefined>();
  useEffect(() => {
    void QRCode.toDataURL(location.href, { errorCorrectionLevel: 'M', margin: 1, width: 440 }).then(setQr);
  }, []);
  const l = link.data;
  const name = l === undefined ? '' : lang !== 'en' && l.merchant.nameZh !== null ? l.merchant.nameZh : l.merchant.name;
  return (
    <>
      <header className="topbar">
        <h1>{t('paylink.title')}</h1>
        <LangSwitch />
      </header>
      <main>
        <div className="center" style={{ marginTop: '1rem' }}>
          <ErrorBox error={link.error} />
          {l === undefined && link.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
          {l !== undefined && (
            <Section title={name} testId="paylink">
              <p className="muted">{[l.merchant.city, l.merchant.country].filter((x) => x !== null).join(' · ')}</p>
              <p className="counter-amount" data-testid="paylink-amount">
                {money(l.amount.amount, l.amount.currency)}
              </p>
              <p data-testid="paylink-description">{l.description}</p>
              {l.state === 'open' ? (
                <>
                  <a className="button" href={`/wallet?link=${encodeURIComponent(l.id)}`} data-testid="paylink-open-wallet">
                    {t('paylink.openWallet')}
                  </a>
                  <p className="muted">{t('paylink.scanHint')}</p>
                  {qr !== undefined && (
                    <div className="qr">
                      <img src={qr} alt={t('paylink.qr')} data-testid="paylink-qr" />
                    </div>
                  )}
                  <p className="muted">
                    {t('paylink.expires')} {date(l.expiresAt)}
                  </p>
                </>
              ) : (
                <p className="warn" role="status" data-testid="paylink-state">
                  {t(`paylink.state.${l.state}`)}
                </p>
              )}
            </Section>
          )}
        </div>
      </main>
    </>
  );
}
