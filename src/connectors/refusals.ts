import { REASONS, type StatusReason } from '../participant-sdk/index.ts';

/**
 * How the API answers a payment that a bank keeping its own books refused (docs/ARCHITECTURE.md, "Connected
 * participants"): one mapping for every route that asks a bank, so that the same reason gets the same code wherever
 * the customer meets it (a P2P confirm, a red packet funded or claimed at a bank, a card or QR payment from an account
 * at a bank). Only the payer's bank, asked to reserve the debit, speaks about the payer's account:
 *   - AM04 (insufficient funds) → `insufficient_funds`;
 *   - MD01 (no mandate: the customer's open-banking consent no longer covers the debit) → `consent_revoked` (the caller
 *     ends the consent's links, as the bank said);
 *   - any other reason, and any reason from the payee's bank asked to accept the credit → the route's own refusal code
 *     (`payment_rejected` for transfers; a card payment keeps `issuer_declined`, its documented contract).
 * The details always carry `paymentId` (the TxId the bank knows), `status: 'RJCT'` and `reason` (ISO 20022 StsRsnInf),
 * and the message states the ISO code.
 */

/** The side whose bank refused: the payer's, asked to reserve the debit, or the payee's, asked to accept the credit. */
export type RefusingSide = 'payer' | 'payee';

export interface BankRefusal<C extends string> {
  readonly code: 'insufficient_funds' | 'consent_revoked' | C;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>> & { readonly paymentId: string; readonly status: 'RJCT'; readonly reason: StatusReason };
}

/** A bank's ISO reason as the API's messages state it: `AC04 closed account (what the bank added)`. */
export function reasonText(reason: StatusReason): string {
  const known = Object.hasOwn(REASONS, reason.Rsn) ? REASONS[reason.Rsn as keyof typeof REASONS] : undefined;
  return `${reason.Rsn}${known !== undefined && reason.Rsn !== 'NARR' ? ` ${known}` : ''}${reason.AddtlInf !== undefined ? ` (${reason.AddtlInf})` : ''}`;
}

/**
 * The API's answer to a bank's refusal of payment `paymentId`. `refused` names what was refused in the message ("the
 * debit", "the packet's funding"), `outcome` what follows for the customer ("nothing moved"); `details` adds the route's
 * own fields (a packet's id and status). `byHub`: the hub, not the bank, gave the reason (an MD01 for a consent that
 * had already ended at the hub: `revokedBy` is then left to the consent's own record). `otherwise` is the code for
 * every other refusal.
 */
export function bankRefusal<C extends string = 'payment_rejected'>(
  input: {
    readonly paymentId: string;
    readonly reason: StatusReason;
    readonly side: RefusingSide;
    readonly refused: string;
    readonly outcome: string;
    readonly byHub?: boolean;
    readonly details?: Readonly<Record<string, unknown>>;
  },
  otherwise: C,
): BankRefusal<C> {
  const { reason } = input;
  const details = { ...input.details, paymentId: input.paymentId, status: 'RJCT' as const, reason };
  const by = input.byHub === true ? `${input.refused} was refused` : `the payer’s bank refused ${input.refused}`;
  if (input.side === 'payer' && reason.Rsn === 'AM04') {
    return { code: 'insufficient_funds', message: `${by}: the account does not hold enough (AM04); ${input.outcome}`, details };
  }
  if (input.side === 'payer' && reason.Rsn === 'MD01') {
    return {
      code: 'consent_revoked',
      message: `${by}: the customer’s consent no longer holds (MD01); ${input.outcome}; link the account again`,
      details: input.byHub === true ? details : { ...details, revokedBy: 'bank' },
    };
  }
  // Which bank (or the hub, for no valid answer in time) is not said: the reason is.
  return { code: otherwise, message: `${input.refused} was refused: ${reasonText(reason)}; ${input.outcome}`, details };
}
