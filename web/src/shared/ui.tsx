import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { ApiError, PageError, errorCode } from './api.ts';
import { errorMessagesEn, errorMessagesZh } from './error-messages.ts';
import { useI18n } from './i18n.tsx';

export function Field(props: { label: string; value: string; onChange: (v: string) => void; type?: string; placeholder?: string; name?: string; autoComplete?: string; inputMode?: 'numeric' | 'text' | 'decimal'; required?: boolean }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        name={props.name}
        type={props.type ?? 'text'}
        value={props.value}
        placeholder={props.placeholder}
        autoComplete={props.autoComplete ?? 'off'}
        inputMode={props.inputMode}
        required={props.required}
        onChange={(e) => props.onChange(e.target.value)}
      />
    </div>
  );
}

export function TextArea(props: { label: string; value: string; onChange: (v: string) => void; name?: string; rows?: number }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <textarea id={id} name={props.name} rows={props.rows ?? 3} value={props.value} onChange={(e) => props.onChange(e.target.value)} />
    </div>
  );
}

export function Select(props: { label: string; value: string; onChange: (v: string) => void; options: readonly { value: string; label: string }[]; name?: string }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <select id={id} name={props.name} value={props.value} onChange={(e) => props.onChange(e.target.value)}>
        {props.options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}

export function Section(props: { title: string; children: ReactNode; actions?: ReactNode; testId?: string }) {
  return (
    <section className="card" aria-label={props.title} data-testid={props.testId}>
      <header className="card-head">
        <h2>{props.title}</h2>
        {props.actions}
      </header>
      {props.children}
    </section>
  );
}

/** A failure in words of the page's language (every API code is translated: ./error-messages.ts). */
export function errorMessage(error: unknown, lang: string): string {
  const code = errorCode(error);
  const dict = lang === 'en' ? errorMessagesEn : errorMessagesZh;
  return dict[code] ?? dict.http_error ?? code;
}

export function ErrorBox({ error }: { error: unknown }) {
  const { lang, t } = useI18n();
  if (error === undefined || error === null) return null;
  if (error instanceof PageError)
    return (
      <p className="error" role="alert" data-code={error.key}>
        {t(error.key)}
      </p>
    );
  const code = errorCode(error);
  // A code the page does not know yet still reads as a sentence; the code itself stays in an attribute for support.
  return (
    <p className="error" role="alert" data-code={code} title={error instanceof ApiError ? code : undefined}>
      {errorMessage(error, lang)}
    </p>
  );
}

/** Runs an async action with a busy flag and an error, for forms. */
export function useAction<A extends unknown[]>(fn: (...args: A) => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = useCallback(
    async (...args: A) => {
      setBusy(true);
      setError(undefined);
      try {
        await fn(...args);
      } catch (e) {
        setError(e);
      } finally {
        setBusy(false);
      }
    },
    [fn],
  );
  return { busy, error, run, setError };
}

/** Loads data, with reload; keeps the last value while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[], intervalMs?: number) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = useCallback(async () => {
    try {
      setData(await loadRef.current());
      setError(undefined);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void reload();
    if (intervalMs === undefined) return undefined;
    const timer = setInterval(() => void reload(), intervalMs);
    return () => clearInterval(timer);
    // The caller lists what the load depends on (`deps`), as with useEffect itself.
  }, deps);
  return { data, error, reload };
}

export function LangSwitch() {
  const { lang, setLang, t } = useI18n();
  return (
    // Its text names the other language in that language ("English" / "中文"): the accessible name is that text.
    <button type="button" className="lang" lang={lang === 'en' ? 'zh-CN' : 'en'} title={t('lang.label')} data-testid="lang-switch" onClick={() => setLang(lang === 'en' ? 'zh-CN' : 'en')}>
      {t('lang.switch')}
    </button>
  );
}

export function Money({ amount, currency, sign }: { amount: string; currency: string; sign?: 'in' | 'out' }) {
  const { money } = useI18n();
  return <span className={`money ${sign ?? ''}`}>{`${sign === 'out' ? '−' : sign === 'in' ? '+' : ''}${money(amount, currency)}`}</span>;
}

export function Tabs<K extends string>(props: { tabs: readonly { key: K; label: string }[]; current: K; onChange: (k: K) => void; label: string }) {
  return (
    <nav className="tabs" aria-label={props.label}>
      {props.tabs.map((tab) => (
        <button key={tab.key} type="button" aria-current={tab.key === props.current ? 'page' : undefined} data-testid={`tab-${tab.key}`} onClick={() => props.onChange(tab.key)}>
          {tab.label}
        </button>
      ))}
    </nav>
  );
}

/** Horizontal bars in plain CSS: label, value, bar scaled to the largest. */
export function Bars({ rows, format, label }: { rows: readonly { label: string; value: number }[]; format: (v: number) => string; label: string }) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  return (
    <figure className="bars" aria-label={label}>
      {rows.map((r) => (
        <div className="bar-row" key={r.label}>
          <span className="bar-label">{r.label}</span>
          <span className="bar-track">
            <span className="bar" style={{ width: `${Math.round((r.value / max) * 100)}%` }} />
          </span>
          <span className="bar-value">{format(r.value)}</span>
        </div>
      ))}
    </figure>
  );
}

/** A destructive action, asked first: the question, a yes and a cancel (the pages never act on one click). */
export function ConfirmBar(props: { question: string; yes: string; busy: boolean; onYes: () => void; onCancel: () => void; yesTestId: string }) {
  const { t } = useI18n();
  return (
    <div className="warn row" role="group" aria-label={props.question}>
      <span>{props.question}</span>
      <button type="button" onClick={props.onYes} disabled={props.busy} data-testid={props.yesTestId}>
        {props.yes}
      </button>
      <button type="button" className="secondary" onClick={props.onCancel} disabled={props.busy}>
        {t('common.cancel')}
      </button>
    </div>
  );
}

/**
 * The form a customer types a one-time code into: what was sent where, the demo participant's code when the demo shows
 * it (a real app shows nothing there), the six digits, confirm and cancel.
 */
export function CodeForm(props: {
  sent: string;
  demo?: { label: string; code: string; testId: string } | undefined;
  name: string;
  code: string;
  onCode: (code: string) => void;
  busy: boolean;
  onSubmit: () => void;
  onCancel: () => void;
  testId: string;
  submitTestId: string;
  /** When the code can no longer be confirmed (locked, expired): confirm is off and cancel says so. */
  cancelLabel?: string | undefined;
  deadEnd?: boolean | undefined;
  children?: ReactNode;
}) {
  const { t } = useI18n();
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        props.onSubmit();
      }}
      data-testid={props.testId}
    >
      <p>{props.sent}</p>
      {props.demo !== undefined && (
        <p className="warn">
          {props.demo.label} <strong data-testid={props.demo.testId}>{props.demo.code}</strong>
        </p>
      )}
      <Field label={t('add.code')} name={props.name} value={props.code} onChange={(v) => props.onCode(v.replace(/\D/g, '').slice(0, 6))} inputMode="numeric" autoComplete="one-time-code" />
      {props.children}
      <div className="row">
        <button type="submit" disabled={props.busy || props.code.length !== 6 || props.deadEnd === true} data-testid={props.submitTestId}>
          {t('common.confirm')}
        </button>
        <button type="button" className="secondary" onClick={props.onCancel} disabled={props.busy}>
          {props.cancelLabel ?? t('common.cancel')}
        </button>
      </div>
    </form>
  );
}
