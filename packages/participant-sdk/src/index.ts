// The SDK's sources live in src/participant-sdk so that the hub's build (src/ → dist/) carries them for the reference
// bank (`hutong simulate bank`); this package is how a participant's own code imports them.
export * from '../../../src/participant-sdk/index.ts';
