import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { I18nProvider } from '../shared/i18n.tsx';
import '../shared/styles.css';
import { PayLinkApp } from './App.tsx';

const root = document.getElementById('root');
if (root !== null)
  createRoot(root).render(
    <StrictMode>
      <I18nProvider>
        <PayLinkApp />
      </I18nProvider>
    </StrictMode>,
  );
