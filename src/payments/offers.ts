import type { Queryable } from '../platform/db.ts';
import type { Result } from '../platform/result.ts';
import type { PErr } from './errors.ts';

/**
 * What the card pipeline asks of merchants' offers (implemented by src/value, wired in main.ts): a payment the payer
 * pushes from their wallet (merchant QR, payment link) applies the best coupon the customer keeps for that merchant
 * (or the one the wallet names), discounted from the amount charged (the merchant gives the discount). The choice is
 * made when the payment is decided, checked again under the coupon's lock in the commit transaction, and recorded
 * with the payment, so a coupon is never used past its per-customer limit, even by payments racing each other.
 */
export interface AppliedCoupon {
  readonly walletCouponId: string;
  readonly couponId: string;
  readonly name: string;
  readonly originalMinor: bigint;
  readonly discountMinor: bigint;
}

export interface CouponChoice {
  readonly participantId: string;
  readonly customerId: string;
  readonly merchantId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  /** The coupon the wallet named (it must apply), or undefined for the best one. */
  readonly walletCouponId?: string | undefined;
  /** False: apply none. */
  readonly apply: boolean;
}

export interface PaymentOffers {
  choose(q: Queryable, input: CouponChoice): Promise<Result<AppliedCoupon | undefined, PErr>>;
  /** Locks the coupons of a commit batch and checks them again (expiry, uses left, counting the batch's own uses). */
  claim(tx: Queryable, items: readonly AppliedCoupon[]): Promise<(PErr | undefined)[]>;
  /** Records the uses of the payments whose money moved. */
  record(tx: Queryable, items: readonly { authorizationId: string; coupon: AppliedCoupon; currency: string }[]): Promise<void>;
}

/** What the pipeline tells rewards about money captured and refunded (implemented by src/value). */
export interface CaptureObserver {
  captured(tx: Queryable, items: readonly { authorizationId: string; cardId: string; issuerParticipantId: string; mcc: string; amountMinor: bigint; currency: string }[]): Promise<void>;
  /** `refundedMinor`: everything refunded of the payment so far, this refund included. */
  refunded(tx: Queryable, item: { authorizationId: string; refundId: string; amountMinor: bigint; capturedMinor: bigint; refundedMinor: bigint }): Promise<void>;
}

/** The value services are created after payments (they use its merchants): the composition root sets them. */
export interface ValueHooks {
  offers?: PaymentOffers | undefined;
  rewards?: CaptureObserver | undefined;
}
