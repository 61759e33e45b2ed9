import type { EventType } from '../webhooks/index.ts';
import type { Actor, AuditService } from '../audit/index.ts';
import type { Card, CardStatus } from './model.ts';
import type { Clock } from '../platform/clock.ts';
import type { Queryable } from '../platform/db.ts';
import type { EventOutbox } from '../webhooks/index.ts';

/**
 * How a card's lifecycle reaches its tokens, inside the card change's own transaction: every token is updated, each
 * change is audited, and each wallet (and the issuer) hears of it by webhook.
 */
export interface TokenPropagation {
  /** Frozen, lost or stolen: active tokens are suspended "by the card". */
  cardSuspended(tx: Queryable, actor: Actor, card: Card, status: CardStatus): Promise<number>;
  /** Unfrozen: tokens the card suspended work again (tokens a wallet, customer or issuer suspended stay suspended). */
  cardResumed(tx: Queryable, actor: Actor, card: Card): Promise<number>;
  /** Every token now stands for the new number; tokens the old card suspended work again. */
  cardReplaced(tx: Queryable, actor: Actor, oldCard: Card, newCard: Card): Promise<number>;
  cardCancelled(tx: Queryable, actor: Actor, card: Card): Promise<number>;
}

interface Touched {
  id: string;
  token_ref: string;
  requestor_participant_id: string;
  status: string;
}

export function createTokenPropagation(deps: { clock: Clock; audit: AuditService; events: EventOutbox }): TokenPropagation {
  const { clock, audit, events } = deps;
  const tell = async (tx: Queryable, actor: Actor, card: Card, rows: Touched[], type: EventType, action: string, data: Record<string, unknown>) => {
    for (const row of rows) {
      await audit.record(tx, { actor, action, objectType: 'token', objectId: row.id, details: { cardId: card.id, requestorParticipantId: row.requestor_participant_id, ...data } });
      await events.emit(tx, { participantId: row.requestor_participant_id, type, data: { tokenRef: row.token_ref, status: row.status, ...data } });
    }
    return rows.length;
  };
  return {
    async cardSuspended(tx, actor, card, status) {
      const rows = await tx.query<Touched>(
        `update card_tokens set status = 'suspended', suspended_by = 'card', updated_at = $2 where card_id = $1 and status = 'active'
         returning id, token_ref, requestor_participant_id, status`,
        [card.id, clock.now()],
      );
      return tell(tx, actor, card, rows, 'token.suspended', 'token.suspended', { reason: `card_${status}` });
    },
    async cardResumed(tx, actor, card) {
      const rows = await tx.query<Touched>(
        `update card_tokens set status = 'active', suspended_by = null, updated_at = $2 where card_id = $1 and status = 'suspended' and suspended_by = 'card'
         returning id, token_ref, requestor_participant_id, status`,
        [card.id, clock.now()],
      );
      return tell(tx, actor, card, rows, 'token.resumed', 'token.resumed', { reason: 'card_unfrozen' });
    },
    async cardReplaced(tx, actor, oldCard, newCard) {
      const rows = await tx.query<Touched>(
        `update card_tokens
            set card_id = $2,
                status = case when status = 'suspended' and suspended_by = 'card' then 'active' else status end,
                suspended_by = case when suspended_by = 'card' then null else suspended_by end,
                updated_at = $3
          where card_id = $1 and status <> 'deleted'
         returning id, token_ref, requestor_participant_id, status`,
        [oldCard.id, newCard.id, clock.now()],
      );
      // Wallets see the new card's last four digits and expiry for display; never its number.
      return tell(tx, actor, newCard, rows, 'token.card_replaced', 'token.remapped', { reason: 'card_replaced', cardLast4: newCard.last4, cardExpiry: newCard.expiry });
    },
    async cardCancelled(tx, actor, card) {
      const rows = await tx.query<Touched>(
        `update card_tokens set status = 'deleted', updated_at = $2 where card_id = $1 and status <> 'deleted'
         returning id, token_ref, requestor_participant_id, status`,
        [card.id, clock.now()],
      );
      return tell(tx, actor, card, rows, 'token.deleted', 'token.deleted', { reason: 'card_cancelled' });
    },
  };
}
