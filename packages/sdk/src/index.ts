/**
 * @hutong/sdk: a typed client for the Hutong hub, generated from its OpenAPI document (`npm run sdk:generate`), and the
 * helpers an integrator needs beside it.
 */
export { createHutongClient, idempotencyKey, retryingFetch, type HutongClient, type HutongClientOptions, type RetryOptions } from './client.ts';
export { signWebhook, verifyWebhook, type AuthorizationRequest, type WebhookEvent, type WebhookEventType, type WebhookVerifyFailure } from './webhooks.ts';
export {
  AtcCounter,
  COUNTRY_NUMERIC,
  CURRENCIES,
  computeTokenCryptogram,
  deriveLimitedUseKey,
  deriveTokenKey,
  merchantQrFields,
  toMinorUnits,
  tokenCryptogramData,
  tokenPaymentSource,
  tokenTapData,
  verifyTokenCryptogram,
  type TokenCryptogramInput,
  type TokenCryptogramScheme,
} from './cryptogram.ts';
export { createDeviceKey, devicePublicKey, signDeviceStatement, type DeviceKeyPair, type DevicePublicKey, type DeviceStatement } from './device.ts';
export {
  readOfflineToken,
  signOfflinePayment,
  signOfflineUnload,
  verifyOfflinePayment,
  verifyOfflineToken,
  type OfflineCheck,
  type OfflineDeviceKey,
  type OfflineHubKey,
  type OfflinePaymentClaims,
  type OfflineUnloadStatement,
} from './offline.ts';
export type { components, operations, paths, webhooks } from './schema.ts';
