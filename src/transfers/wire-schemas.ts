import { Type, type TObject, type TProperties } from '@sinclair/typebox';
import { Money, Timestamp } from '../api/index.ts';
import { ALIAS_TYPES } from '../aliases/index.ts';

/**
 * Response bodies of the accounts, aliases and FX routes (routes.ts), as /openapi.json and the SDK show them. Each is
 * closed (additionalProperties: false), so the serializer writes exactly these fields: the wire objects in routes.ts
 * are checked against them by the compiler (`Exactly`), which also refuses a wire field a schema would drop.
 */
const Closed = <P extends TProperties>(properties: P, description: string): TObject<P> => Type.Object(properties, { additionalProperties: false, description });
const AliasTypeSchema = Type.Union(ALIAS_TYPES.map((t) => Type.Literal(t)));

export const OpenedAccountSchema = Closed(
  { id: Type.String({ description: 'The account id (acc_<customer>_<currency>)' }), customerId: Type.String(), currency: Type.String(), balance: Money },
  'Account',
);
export const DepositSchema = Closed({ accountId: Type.String(), amount: Money }, 'Deposit: the amount moved from your funding account to the account');
export const RevokedLinkSchema = Closed({ id: Type.String(), status: Type.String({ description: 'revoked' }) }, 'The link, revoked');
export const AliasSchema = Closed(
  {
    id: Type.String(),
    type: Type.String({ description: 'phone, email or handle' }),
    value: Type.String({ description: 'As stored: phones in E.164, emails and handles lower-cased (a handle without its @)' }),
    accountId: Type.String({ description: 'The account it pays into' }),
    flagged: Type.Boolean({ description: 'Reported for suspected fraud by some participant' }),
    createdAt: Timestamp,
  },
  'Alias',
);
export const DeletedAliasSchema = Closed({ id: Type.String(), deleted: Type.Literal(true) }, 'The alias, deleted');
export const AliasLookupSchema = Closed(
  {
    alias: Type.String({ description: 'The alias, normalized' }),
    type: AliasTypeSchema,
    maskedName: Type.String({ description: 'The payee’s name, masked (张*)' }),
    participantId: Type.String({ description: 'The participant holding the payee’s account' }),
    participantName: Type.String(),
    currency: Type.String({ description: 'The currency of the account it pays into' }),
    flagged: Type.Boolean(),
    warning: Type.Union([Type.String(), Type.Null()], { description: 'What to show the payer when the alias is flagged' }),
  },
  'Verification of payee',
);
export const AliasMoveSchema = Closed({ id: Type.String(), status: Type.Literal('pending'), expiresAt: Timestamp }, 'Alias move: confirm it with the customer’s code');
export const AliasVerificationSchema = Closed({ id: Type.String(), status: Type.Literal('pending'), expiresAt: Timestamp }, 'Alias verification: confirm it with the code sent to the number or address');
export const AliasFlagSchema = Closed({ aliasId: Type.String(), flagged: Type.Boolean() }, 'Your fraud flag on the alias');
export const FxRatesSchema = Closed(
  {
    asOf: Type.Union([Type.String(), Type.Null()], { description: 'The reference date of the rates (the ECB’s); null while the operator has loaded none (then `rates` is empty and amounts in other currencies than EUR are refused with fx_rate_unavailable)' }),
    base: Type.Literal('EUR'),
    spreadBps: Type.Integer({ description: 'The spread applied to the mid rate, in basis points' }),
    rates: Type.Record(Type.String({ pattern: '^[A-Z]{3}$' }), Type.String({ description: 'Units of the currency per 1 EUR, a decimal string' })),
  },
  'Reference rates',
);
export const FxRefreshSchema = Closed({ asOf: Type.String(), currencies: Type.Integer({ description: 'How many currencies the document priced' }), spreadBps: Type.Integer() }, 'The rates in force now');
export { Exactly } from '../api/index.ts';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T, description: string) => Type.Union([schema, Type.Null()], { description });
export const MoneyRequestSchema = Closed(
  {
    id: Type.String(),
    status: Type.Union(['pending', 'paid', 'declined', 'cancelled', 'expired'].map((s) => Type.Literal(s))),
    requester: Closed({ maskedName: Type.String(), participantName: Type.String() }, 'Who asks (as the payer sees them)'),
    requesterCustomerId: Type.String({ description: 'The requesting customer (at the requester’s participant)' }),
    payerCustomerId: Type.String({ description: 'The customer asked to pay (at the payer’s participant)' }),
    amount: Money,
    note: Nullable(Type.String(), 'The requester’s note'),
    firstTime: Type.Boolean({ description: 'The first request between these two' }),
    flagged: Type.Boolean({ description: 'The requester’s alias is reported for suspected fraud' }),
    warning: Type.String({ description: 'What to show the payer before they approve' }),
    splitId: Nullable(Type.String(), 'The split bill it is a share of'),
    paymentId: Nullable(Type.String(), 'The payment that paid it'),
    expiresAt: Timestamp,
    createdAt: Timestamp,
  },
  'A money request',
);
export const SplitSchema = Closed(
  {
    id: Type.String(),
    customerId: Type.String({ description: 'The customer who paid the bill' }),
    total: Money,
    method: Type.Union([Type.Literal('equal'), Type.Literal('shares'), Type.Literal('amounts')]),
    note: Nullable(Type.String(), 'The note'),
    rounding: Type.String({ description: 'How shares are rounded' }),
    members: Type.Array(
      Closed(
        {
          index: Type.Integer(),
          maskedName: Type.String(),
          amount: Money,
          isPayer: Type.Boolean({ description: 'The member who paid the bill (no request)' }),
          requestId: Nullable(Type.String(), 'The money request sent to this member'),
          status: Type.Union(['paid', 'pending', 'declined', 'expired', 'cancelled'].map((s) => Type.Literal(s))),
        },
        'A member and their share',
      ),
    ),
    paidCount: Type.Integer(),
    createdAt: Timestamp,
  },
  'A split bill',
);
export const RedPacketSchema = Closed(
  {
    id: Type.String(),
    total: Money,
    shares: Type.Integer(),
    mode: Type.Union([Type.Literal('equal'), Type.Literal('random')]),
    message: Nullable(Type.String(), 'The sender’s message'),
    status: Type.Union(
      [Type.Literal('funding'), Type.Literal('open'), Type.Literal('failed'), Type.Literal('refunding'), Type.Literal('completed'), Type.Literal('refunded')],
      {
        description:
          'funding while the sender’s bank (an account at a bank that keeps its own books) is asked to reserve; open once funded; failed when the bank refused or did not answer in time (nothing moved, nothing to claim); ' +
          'at expiry completed (every share claimed), refunded (the rest back to the sender), or refunding while the rest goes back to the sender’s bank — after a refusal it waits in the hub’s escrow until refundRetryAt',
      },
    ),
    fundingPaymentId: Nullable(Type.String(), 'Funded from an account at a bank that keeps its own books: the funding payment (the TxId the bank knows)'),
    reason: Nullable(
      Type.Object({ Rsn: Type.String({ description: 'ISO 20022 status reason code (AM04, AC04, MD01, AB05…)' }), AddtlInf: Type.Optional(Type.String()) }, { additionalProperties: false }),
      'failed: why the bank refused to fund it; refunding: why the last refund was refused',
    ),
    refundRetryAt: Nullable(Timestamp, 'refunding after a refusal: when the refund to the sender’s bank is tried again'),
    claimedCount: Type.Integer(),
    claimed: Money,
    refunded: Money,
    claims: Type.Array(Closed({ maskedName: Type.String(), amount: Money, claimedAt: Timestamp }, 'A claim')),
    expiresAt: Timestamp,
    createdAt: Timestamp,
  },
  'A red packet',
);
export const RedPacketClaimSchema = Closed(
  { packetId: Type.String(), amount: Money, packet: RedPacketSchema, paymentId: Type.Optional(Type.String({ description: 'When your bank keeps its own books: the payment that paid your share (accepted by the bank, then committed)' })) },
  'Your share, and the packet after it',
);
export const FeeSchema = Closed(
  { payerParticipantId: Type.String(), payeeParticipantId: Type.String(), fixed: Money, bps: Type.Integer({ description: 'Basis points of the amount, added to the fixed part' }) },
  'The fee in force between the two participants',
);
export const RemindedSchema = Closed({ reminded: Type.Integer({ description: 'How many members were reminded' }) }, 'Reminders sent');

export const ConsentSchema = Closed(
  {
    id: Type.String({ description: 'The consent id: the customer types the bank’s code into the wallet to confirm it' }),
    status: Type.String({ description: 'pending until the customer confirms the bank’s code' }),
    bankParticipantId: Type.String(),
    expiresAt: Timestamp,
  },
  'Consent: the bank has been asked to link its accounts of this customer',
);

const RiskActionSchema = Type.Union([Type.Literal('step_up'), Type.Literal('decline')]);
export const AlertSchema = Closed(
  {
    id: Type.String(),
    participantId: Type.String(),
    customerId: Type.String(),
    channel: Type.String({ description: 'p2p, request, split, red_packet, card…' }),
    decision: RiskActionSchema,
    score: Type.Integer(),
    reasons: Type.Array(Closed({ rule: Type.String(), score: Type.Integer(), action: RiskActionSchema, message: Type.String() }, 'A rule that fired')),
    context: Type.Object({}, { additionalProperties: true, description: 'What the rules saw (amounts in EUR cents for comparison, counts)' }),
    status: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
    resolution: Type.Union([Type.String(), Type.Null()]),
    createdAt: Timestamp,
    resolvedAt: Type.Union([Timestamp, Type.Null()]),
  },
  'Risk alert',
);
export const AlertListSchema = Type.Object({ items: Type.Array(AlertSchema) }, { additionalProperties: false });

/** A rule in force (hub default or your override), with the parameters its kind takes. */
const P2pRuleSchema = Closed(
  {
    enabled: Type.Boolean(),
    action: RiskActionSchema,
    score: Type.Integer(),
    windowS: Type.Optional(Type.Integer({ description: 'velocity: the window, in seconds' })),
    maxCount: Type.Optional(Type.Integer({ description: 'velocity: payments allowed in the window' })),
    multiple: Type.Optional(Type.Integer({ description: 'amount_vs_history: multiple of the customer’s average' })),
    minHistory: Type.Optional(Type.Integer({ description: 'amount_vs_history: payments needed before it applies' })),
    minRefEurCents: Type.Optional(Type.Integer({ description: 'threshold, in EUR cents (the hub’s reference currency for rules)' })),
  },
  'A risk rule in force',
);
/** The rules in force, one property per rule name. */
export const rulesSchema = <N extends string>(names: readonly N[], rule: TObject) =>
  Type.Object(Object.fromEntries(names.map((n) => [n, rule])) as Record<N, TObject>, { additionalProperties: false, description: 'The rules in force: hub defaults with your overrides' });
export const P2pRulesSchema = (names: readonly string[]) => rulesSchema(names, P2pRuleSchema);
