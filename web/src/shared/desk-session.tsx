import { useMemo, useState } from 'react';
import { createApi } from './api.ts';
import { useI18n } from './i18n.tsx';
import { ErrorBox, Field, Section, useAction } from './ui.tsx';

/**
 * The demo desk session of the merchant counter and the issuer desk (POST /demo/v1/desk-session: demo mode, this
 * machine only): a short-lived token for a demo merchant or bank, kept in sessionStorage under the page's own key.
 */
export interface DeskSession {
  key: string;
  name: string;
  token: string;
  expiresAtMs: number;
}

/** The page's stored session, while it has more than 30 s left. */
export function loadDeskSession(storageKey: string): DeskSession | undefined {
  try {
    const raw = sessionStorage.getItem(storageKey);
    const s = raw === null ? undefined : (JSON.parse(raw) as DeskSession);
    return s !== undefined && s.expiresAtMs > Date.now() + 30_000 ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Signs in as a demo participant by its demo key; the page's texts come as i18n keys. */
export function DeskSignIn(props: {
  defaultKey: string;
  title: string;
  label: string;
  note: string;
  fieldName: string;
  testId: string;
  onSession: (s: DeskSession) => void;
}) {
  const { t } = useI18n();
  const [key, setKey] = useState(props.defaultKey);
  const anonymous = useMemo(() => createApi(async () => undefined), []);
  const signIn = useAction(async () => {
    const r = await anonymous.post<{ accessToken: string; expiresInS: number; participant: { key: string; name: string } }>('/demo/v1/desk-session', { participant: key.trim() });
    props.onSession({ key: r.participant.key, name: r.participant.name, token: r.accessToken, expiresAtMs: Date.now() + r.expiresInS * 1000 });
  });
  return (
    <div className="center">
      <Section title={t(props.title)}>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void signIn.run();
          }}
        >
          <Field label={t(props.label)} name={props.fieldName} value={key} onChange={setKey} />
          <button type="submit" disabled={signIn.busy || key.trim() === ''} data-testid={props.testId}>
            {t('common.signIn')}
          </button>
          <ErrorBox error={signIn.error} />
        </form>
        <p className="muted">{t(props.note)}</p>
      </Section>
    </div>
  );
}
