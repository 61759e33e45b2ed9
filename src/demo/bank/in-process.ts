import type { Hub } from '../../main.ts';
import { CONNECTED_BANK, CONNECTED_CUSTOMERS, connectReferenceBank, type ConnectedBankCredential } from './connect.ts';
import { createReferenceBank } from './reference-bank.ts';

/**
 * The demo's connected bank in the hub's own process (`npm start`): the reference bank with its books in its own
 * PGlite data directory, listening on loopback, connected to the hub in CNY.
 */
export async function startConnectedBank(hub: Hub, options: { dataDir: string; hubUrl: string }): Promise<{ url: string; name: string; credential: ConnectedBankCredential; signIn: { account: string; passcode: string }; close(): Promise<void> }> {
  const bank = await createReferenceBank({ dataDir: options.dataDir, hubPublicJwk: await hub.connectors.publicJwk(), name: CONNECTED_BANK.name });
  const url = await bank.listen(0, '127.0.0.1');
  const credential = await connectReferenceBank(hub, bank, { hubUrl: options.hubUrl });
  const first = CONNECTED_CUSTOMERS[0]!;
  // How her customer approves a wallet's access at the bank's page (the simulation's sign-in).
  return { url, name: CONNECTED_BANK.name, credential, signIn: { account: first.bankAccount, passcode: first.passcode }, close: () => bank.close() };
}
