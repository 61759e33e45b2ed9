import type { Hub } from '../../main.ts';
import { CONNECTED_BANK, connectReferenceBank, type ConnectedBankCredential } from './connect.ts';
import { createReferenceBank } from './reference-bank.ts';

/**
 * The demo's connected bank in the hub's own process (`npm start`): the reference bank with its books in its own
 * PGlite data directory, listening on loopback, connected to the hub in CNY.
 */
export async function startConnectedBank(hub: Hub, options: { dataDir: string; hubUrl: string }): Promise<{ url: string; name: string; credential: ConnectedBankCredential; close(): Promise<void> }> {
  const bank = await createReferenceBank({ dataDir: options.dataDir, hubPublicJwk: await hub.connectors.publicJwk(), name: CONNECTED_BANK.name });
  const url = await bank.listen(0, '127.0.0.1');
  const credential = await connectReferenceBank(hub, bank, { hubUrl: options.hubUrl });
  return { url, name: CONNECTED_BANK.name, credential, close: () => bank.close() };
}
