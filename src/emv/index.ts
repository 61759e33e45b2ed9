/** Public API of the EMV module: QR (MPM and CPM), BER-TLV, DES and application cryptograms. */
export { crc16, crc16Bytes, crc16Hex } from './crc16.ts';
export {
  decodeMpm,
  describeMpm,
  encodeMpm,
  encodeMpmFields,
  isTemplateTag,
  MPM_EMVCO_MAX_PAYLOAD_CHARS,
  MPM_MAX_PAYLOAD_CHARS,
  MPM_MAX_VALUE_CHARS,
  type DecodedMpm,
  type DecodeMpmOptions,
  type MpmEncodeInput,
  type MpmError,
  type MpmErrorDetails,
  type MpmField,
  type MpmPrimitiveField,
  type MpmReason,
  type MpmResult,
  type MpmTemplateField,
  type MpmView,
  type MpmWarning,
} from './mpm.ts';
export {
  berTlvToJson,
  constructedTlv,
  decodeBerTlv,
  encodeBerTlv,
  findTlv,
  isConstructedTag,
  primitiveTlv,
  type BerTlv,
  type BerTlvError,
  type BerTlvJson,
  type BerTlvResult,
} from './ber-tlv.ts';
export {
  base64ToBytes,
  bytesToBase64,
  CPM_MAX_PAYLOAD_BYTES,
  decodeCpm,
  decodeCpmBytes,
  encodeCpm,
  type CpmApplication,
  type CpmDataLayout,
  type CpmEncodeInput,
  type CpmError,
  type CpmReason,
  type CpmResult,
  type DecodedCpm,
} from './cpm.ts';
export {
  adjustKeyParity,
  desDecryptBlock,
  desEncryptBlock,
  desEncryptCbc,
  desEncryptEcb,
  keyCheckValue,
  tdesDecryptCbc,
  tdesDecryptEcb,
  tdesEncryptCbc,
  tdesEncryptEcb,
} from './des.ts';
export {
  arpcMethod1,
  arpcMethod2,
  deriveAcSessionKey,
  deriveCommonSessionKey,
  deriveIccMasterKey,
  deriveMastercardSessionKey,
  deriveVisaSmSessionKey,
  mastercardArpc,
  mastercardCvn16Arqc,
  mastercardCvn17Arqc,
  padIso9797,
  retailMac,
  transactionDataBytes,
  visaCommandMac,
  visaCvn10Arpc,
  visaCvn10Arqc,
  visaCvn18Arpc,
  visaCvn18Arqc,
  type PaddingMethod,
  type TransactionData,
} from './cryptogram.ts';
export {
  computeTokenCryptogram,
  deriveLimitedUseKey,
  deriveTokenKey,
  tokenCryptogramData,
  verifyTokenCryptogram,
  TOKEN_AIP,
  TOKEN_COUNTERS,
  TOKEN_CRYPTOGRAM_SCHEMES,
  TOKEN_CVR,
  type TokenCryptogramInput,
  type TokenCryptogramScheme,
} from './token-cryptogram.ts';
export { runQrCommand, type CliOutput } from './qr-cli.ts';
export { bytesToHex, hexToBytes } from './hex.ts';
export * from './cpm.ts';
export * from './crc16.ts';
export * from './mpm.ts';
export * from './qr-cli.ts';
export * from './token-cryptogram.ts';
