import { useEffect, useRef, useState } from 'react';
import jsQR from 'jsqr';
import QRCode from 'qrcode';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Section, useLoad } from '../shared/ui.tsx';
import type { WalletSession } from './session.ts';

/**
 * Reading QR codes in the browser: the camera (getUserMedia) or an uploaded picture, decoded with the browser's
 * BarcodeDetector where it has one and with jsQR (a maintained pure-JS decoder) everywhere else, so an upload works in
 * any Chromium build.
 */
type Detector = { detect(source: CanvasImageSource): Promise<{ rawValue: string }[]> };
const nativeDetector = (): Detector | undefined => {
  const D = (globalThis as { BarcodeDetector?: new (o: object) => Detector }).BarcodeDetector;
  try {
    return D === undefined ? undefined : new D({ formats: ['qr_code'] });
  } catch {
    return undefined;
  }
};

/** Reads the first QR code in what is drawn on the canvas (jsQR), or undefined. */
function readCanvas(canvas: HTMLCanvasElement): string | undefined {
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (ctx === null || canvas.width === 0 || canvas.height === 0) return undefined;
  const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return jsQR(image.data, image.width, image.height, { inversionAttempts: 'attemptBoth' })?.data;
}

export class QrNotFound extends Error {}

/** Decodes a QR code in an image file (a photo or a screenshot of a code). */
export async function decodeImage(file: Blob): Promise<string> {
  const bitmap = await createImageBitmap(file);
  const native = nativeDetector();
  if (native !== undefined) {
    const found = await native.detect(bitmap).catch(() => []);
    if (found[0] !== undefined) return found[0].rawValue;
  }
  const canvas = document.createElement('canvas');
  const scale = Math.min(1, 1200 / Math.max(bitmap.width, bitmap.height));
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext('2d')?.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const text = readCanvas(canvas);
  if (text === undefined) throw new QrNotFound('no QR code in the image');
  return text;
}

/** The camera's live picture, read a few times a second until a code is found (then the camera is released). */
export function CameraScanner({ onCode, onClose }: { onCode: (text: string) => void; onClose: () => void }) {
  const { t } = useI18n();
  const video = useRef<HTMLVideoElement>(null);
  const [problem, setProblem] = useState<string | undefined>();
  const [state, setState] = useState<'starting' | 'scanning'>('starting');
  useEffect(() => {
    let stream: MediaStream | undefined;
    let timer: ReturnType<typeof setInterval> | undefined;
    let stopped = false;
    const canvas = document.createElement('canvas');
    const stop = () => {
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      stream?.getTracks().forEach((track) => track.stop());
    };
    (async () => {
      if (navigator.mediaDevices?.getUserMedia === undefined) throw new Error('scan.noCamera');
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
      if (stopped || video.current === null) return stop();
      video.current.srcObject = stream;
      await video.current.play().catch(() => undefined);
      setState('scanning');
      const native = nativeDetector();
      let busy = false;
      timer = setInterval(() => {
        const v = video.current;
        if (busy || v === null || v.videoWidth === 0) return;
        busy = true;
        void (async () => {
          let text: string | undefined;
          if (native !== undefined) text = (await native.detect(v).catch(() => []))[0]?.rawValue;
          if (text === undefined) {
            canvas.width = v.videoWidth;
            canvas.height = v.videoHeight;
            canvas.getContext('2d', { willReadFrequently: true })?.drawImage(v, 0, 0);
            text = readCanvas(canvas);
          }
          busy = false;
          if (text !== undefined && !stopped) {
            stop();
            onCode(text);
          }
        })();
      }, 250);
    })().catch((e: unknown) => setProblem(e instanceof Error && e.message === 'scan.noCamera' ? 'scan.noCamera' : 'scan.cameraDenied'));
    return stop;
  }, [onCode]);
  return (
    <div data-testid="camera" data-state={problem !== undefined ? 'error' : state}>
      <video ref={video} className="scan" muted playsInline aria-label={t('scan.camera')} />
      <p className="muted" aria-live="polite">
        {problem !== undefined ? '' : state === 'starting' ? t('scan.starting') : t('scan.pointAt')}
      </p>
      {problem !== undefined && (
        <p className="error" role="alert">
          {t(problem)}
        </p>
      )}
      <button type="button" className="secondary" onClick={onClose} data-testid="camera-close">
        {t('common.cancel')}
      </button>
    </div>
  );
}

/** A person-to-person code: the payer's wallet (this one, or any that reads it) opens "send money" to this alias. */
export const RECEIVE_PREFIX = 'hutong:pay?';
export function receivePayload(alias: { type: string; value: string }): string {
  return `${RECEIVE_PREFIX}${new URLSearchParams({ type: alias.type, value: alias.value }).toString()}`;
}
export function parseReceivePayload(text: string): { type: string; value: string } | undefined {
  if (!text.startsWith(RECEIVE_PREFIX)) return undefined;
  const q = new URLSearchParams(text.slice(RECEIVE_PREFIX.length));
  const type = q.get('type');
  const value = q.get('value');
  return type !== null && value !== null && value !== '' ? { type, value } : undefined;
}

interface Alias { id: string; type: string; value: string }

/** 收款码: the customer's own receive code, built from one of their aliases. */
export function ReceiveCode({ api, session }: { api: Api; session: WalletSession }) {
  const { t } = useI18n();
  const aliases = useLoad(async () => (await api.get<{ items: Alias[] }>(`/v1/aliases?customerId=${encodeURIComponent(session.customerId)}`)).items, [api]);
  const alias = (aliases.data ?? []).find((a) => a.type === 'handle') ?? aliases.data?.[0];
  const [image, setImage] = useState<string | undefined>();
  useEffect(() => {
    if (alias === undefined) return;
    void QRCode.toDataURL(receivePayload(alias), { errorCorrectionLevel: 'M', margin: 1, width: 440 }).then(setImage);
  }, [alias?.type, alias?.value]);
  return (
    <Section title={t('receive.title')} testId="receive-code">
      <ErrorBox error={aliases.error} />
      {aliases.data === undefined && aliases.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
      {aliases.data !== undefined && alias === undefined && <p className="muted">{t('receive.noAlias')}</p>}
      {alias !== undefined && image !== undefined && (
        <>
          <div className="qr">
            <img src={image} alt={`${t('receive.title')}: ${alias.value}`} data-testid="receive-qr" data-payload={receivePayload(alias)} />
          </div>
          <p>
            {t(`alias.${alias.type}`)}: <strong>{alias.value}</strong>
          </p>
          <p className="muted">{t('receive.hint')}</p>
        </>
      )}
    </Section>
  );
}

/** A red packet shared as a code or a link: the wallet that reads it opens "claim" with its id. */
export const PACKET_PREFIX = 'hutong:packet?';
export const packetPayload = (id: string) => `${PACKET_PREFIX}${new URLSearchParams({ id }).toString()}`;
export function parsePacketPayload(text: string): string | undefined {
  const fromCode = text.startsWith(PACKET_PREFIX) ? new URLSearchParams(text.slice(PACKET_PREFIX.length)).get('id') : null;
  const fromLink = /[?&]packet=([A-Za-z0-9_.:-]+)/.exec(text)?.[1] ?? null;
  const id = fromCode ?? fromLink;
  return id !== null && id !== '' ? id : undefined;
}

export function PacketShare({ id }: { id: string }) {
  const { t } = useI18n();
  const [image, setImage] = useState<string | undefined>();
  useEffect(() => {
    void QRCode.toDataURL(packetPayload(id), { errorCorrectionLevel: 'M', margin: 1, width: 360 }).then(setImage);
  }, [id]);
  const link = `${location.origin}/wallet?packet=${encodeURIComponent(id)}`;
  return (
    <div data-testid="packet-share">
      {image !== undefined && (
        <div className="qr">
          <img src={image} alt={t('xfer.packetQr')} data-testid="packet-qr" data-payload={packetPayload(id)} />
        </div>
      )}
      <p>
        <a href={link} data-testid="packet-link">
          {link}
        </a>
      </p>
    </div>
  );
}
