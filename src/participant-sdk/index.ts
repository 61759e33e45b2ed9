/**
 * The participant SDK (packages/participant-sdk re-exports it): what a connected participant's core system needs to
 * answer the hub's connector calls. It imports nothing from the hub (checked by test/connected/sdk.test.ts).
 */
export * from './protocol.ts';
export * from './connector.ts';
