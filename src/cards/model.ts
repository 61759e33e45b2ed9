import type { TokenCryptogramScheme } from '../emv/index.ts';
export const CARD_STATUSES = ['inactive', 'active', 'frozen', 'lost', 'stolen', 'replaced', 'cancelled'] as const;
export type CardStatus = (typeof CARD_STATUSES)[number];
export const CHANNELS = ['qr', 'tap', 'online'] as const;
export type Channel = (typeof CHANNELS)[number];
export type CardType = 'debit' | 'credit';

/** Spending controls of one card; absent fields mean "no limit". Amounts in the card's currency, minor units. */
export interface CardControls {
  readonly perTransactionMaxMinor?: bigint;
  readonly dailyLimitMinor?: bigint;
  readonly monthlyLimitMinor?: bigint;
  /** When present, only these merchant category codes. */
  readonly allowedMccs?: readonly string[];
  readonly blockedMccs?: readonly string[];
  /** ISO 3166-1 alpha-2; when present, only these countries. */
  readonly allowedCountries?: readonly string[];
  /** When present, only these channels. */
  readonly channels?: readonly Channel[];
}

export interface CardProduct {
  readonly id: string;
  readonly issuerParticipantId: string;
  readonly name: string;
  readonly binPrefix: string;
  readonly panLength: number;
  readonly brand: string;
  readonly currency: string;
  readonly cardType: CardType;
  readonly defaultCreditLimitMinor: bigint | null;
  readonly validityYears: number;
  /** The cryptogram its tokens make (src/emv/token-cryptogram.ts). */
  readonly tokenCryptogram: TokenCryptogramScheme;
  readonly createdAt: Date;
}

/** A card as everyone but the cardholder sees it: masked number, never the CVV. */
export interface Card {
  readonly id: string;
  readonly issuerParticipantId: string;
  readonly productId: string;
  readonly customerId: string;
  readonly first6: string;
  readonly last4: string;
  readonly maskedNumber: string;
  readonly expiry: string;
  readonly status: CardStatus;
  readonly par: string;
  readonly brand: string;
  readonly currency: string;
  readonly cardType: CardType;
  /** A credit card's own credit account (opened at issuance); a debit card's customer account. */
  readonly fundingAccountId: string | null;
  readonly creditLimitMinor: bigint | null;
  /** A credit card only: the customer's account the issuer takes repayments from by default. */
  readonly repaymentAccountId: string | null;
  readonly controls: CardControls;
  readonly replacesCardId: string | null;
  readonly replacedByCardId: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What issuing (or replacing) a card answers once: the number and the derived CVV. */
export interface IssuedCard {
  readonly card: Card;
  readonly cardNumber: string;
  readonly cvv: string;
}

/** A credit line as a wallet shows it: its limit, what is available and owed now, and the latest statement. */
export interface CreditView {
  readonly currency: string;
  readonly limitMinor: bigint;
  /** limit − owed − amounts held by pending authorisations. */
  readonly availableMinor: bigint;
  /** Posted spending not yet repaid. */
  readonly owedMinor: bigint;
  readonly statement: {
    readonly id: string;
    readonly balanceMinor: bigint;
    readonly minimumMinor: bigint;
    readonly paidMinor: bigint;
    readonly dueAt: Date;
    readonly status: string;
  } | null;
}

/** The credit lines of these accounts (ones that are not credit lines are absent). Wired by the credit capability. */
export type CreditOf = (accountIds: readonly string[]) => Promise<Map<string, CreditView>>;
