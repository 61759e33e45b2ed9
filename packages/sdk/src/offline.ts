/**
 * Offline small payments, on the device and at the terminal. The wallet opens a purse for the device's key
 * (POST /v1/offline/purses with `devicePublicKey`, see device.ts); with no network the device pays a merchant's terminal
 * with `signOfflinePayment` (purse, a counter it increments for every payment and never reuses, amount, currency,
 * merchant, the time) and shows it with the purse's `certificate`; the terminal checks both with `verifyOfflinePayment`
 * against the hub's key (GET /v1/offline/certificate-key, configured in the terminal) and uploads the token when online
 * (POST /v1/offline/payments). To take the unspent balance back the
 * device signs `signOfflineUnload` (its last counter and what it has left).
 */
import {
  readOfflineToken,
  signOfflinePayment,
  signOfflineUnload,
  verifyCompactEs256,
  verifyOfflinePayment,
  type OfflineCheck,
  type OfflineDeviceKey,
  type OfflineHubKey,
  type OfflinePaymentClaims,
  type OfflineUnloadStatement,
} from '../../../src/offline/token.ts';

export { readOfflineToken, signOfflinePayment, signOfflineUnload, verifyOfflinePayment, type OfflineCheck, type OfflineDeviceKey, type OfflineHubKey, type OfflinePaymentClaims, type OfflineUnloadStatement };

/** Whether `token` is signed by `key` (the terminal's check before it accepts the payment offline). */
export const verifyOfflineToken = (key: OfflineDeviceKey, token: string): Promise<boolean> => verifyCompactEs256(key, token);
