export const PARTICIPANT_KINDS = ['issuer', 'wallet', 'merchant', 'acquirer'] as const;
export type ParticipantKind = (typeof PARTICIPANT_KINDS)[number];
export type ParticipantStatus = 'active' | 'suspended';

export interface Participant {
  readonly id: string;
  readonly kind: ParticipantKind;
  readonly name: string;
  readonly country: string;
  readonly currencies: readonly string[];
  readonly webhookUrl: string | null;
  readonly status: ParticipantStatus;
  readonly rateLimitPerS: number | null;
  readonly createdAt: Date;
}

export interface Credential {
  readonly id: string; // the OAuth client_id
  readonly participantId: string;
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
}

/** Shown once, at creation: the hub keeps only a hash of the secret. */
export interface IssuedCredential extends Credential {
  readonly clientSecret: string;
}

/** The authenticated caller of a participant route. */
export interface ParticipantPrincipal {
  readonly participantId: string;
  readonly kind: ParticipantKind;
  readonly credentialId: string;
  /** Set for a customer session: the one customer the token acts for. */
  readonly customerId?: string;
}

export type ParticipantErrorCode =
  | 'participant_not_found'
  | 'participant_suspended'
  | 'credential_not_found'
  | 'credential_limit'
  | 'invalid_client'
  | 'unauthorized'
  | 'forbidden'
  | 'invalid_webhook_url'
  | 'invalid_connection'
  | 'invalid_country';

/** Two active credentials at once: the old and the new during a rotation. */
export const MAX_ACTIVE_CREDENTIALS = 2;
