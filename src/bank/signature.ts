// Signed banks. The SHA-256 trailer of a .nfp file catches corruption, not tampering: anyone who
// edits a bank can recompute it (swapping two equal-size taps' names loads cleanly and flags every
// clean image). An Ed25519 signature over the whole file, checked against the deployment's public
// key, makes a swapped or edited bank fail to load. A signed file is format version 2: the version 1
// layout followed by a trailer of "NFPSIG1\0", the signing key's id (SHA-256 of its SPKI encoding)
// and the 64-byte signature of every byte before the trailer.
import {
  KeyObject,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
} from 'node:crypto';

export const signatureTag = 'NFPSIG1\0';
export const signatureTrailerBytes = 8 + 32 + 64;

/** A public or private key: a KeyObject, or PEM text (or its bytes). */
export type KeyInput = KeyObject | string | Uint8Array;

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureError';
  }
}

function publicKeyOf(key: KeyInput): KeyObject {
  try {
    const k = key instanceof KeyObject ? key : createPublicKey(asPem(key));
    const pub = k.type === 'private' ? createPublicKey(k) : k;
    if (pub.asymmetricKeyType !== 'ed25519')
      throw new SignatureError(`expected an Ed25519 key but received ${pub.asymmetricKeyType}`);
    return pub;
  } catch (error) {
    if (error instanceof SignatureError) throw error;
    throw new SignatureError(`not a usable public key (${(error as Error).message})`);
  }
}

function privateKeyOf(key: KeyInput): KeyObject {
  try {
    const k = key instanceof KeyObject ? key : createPrivateKey(asPem(key));
    if (k.type !== 'private' || k.asymmetricKeyType !== 'ed25519')
      throw new SignatureError(`expected an Ed25519 private key but received a ${k.type} ${k.asymmetricKeyType} key`);
    return k;
  } catch (error) {
    if (error instanceof SignatureError) throw error;
    throw new SignatureError(`not a usable private key (${(error as Error).message})`);
  }
}

function asPem(key: string | Uint8Array): string {
  return typeof key === 'string' ? key : Buffer.from(key).toString('utf8');
}

/** The id that a signed bank names its key by: SHA-256 of the public key's SPKI encoding, 32 bytes. */
export function keyId(key: KeyInput): Uint8Array {
  return createHash('sha256')
    .update(publicKeyOf(key).export({ type: 'spki', format: 'der' }))
    .digest();
}

/** A new Ed25519 key pair as PEM: PKCS#8 private key, SPKI public key. */
export function generateSigningKeys(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** The trailer that signs `content` (a version 2 file up to and including its checksum). */
export function signatureTrailer(content: Uint8Array, privateKey: KeyInput): Uint8Array {
  const key = privateKeyOf(privateKey);
  const trailer = new Uint8Array(signatureTrailerBytes);
  trailer.set(Buffer.from(signatureTag, 'latin1'), 0);
  trailer.set(keyId(key), 8);
  trailer.set(sign(null, content, key), 40);
  return trailer;
}

/** Checks a trailer's form; with a key, that the key made it and that it signs `content`. Returns the key id (hex). */
export function checkSignature(content: Uint8Array, trailer: Uint8Array, publicKey?: KeyInput): string {
  if (Buffer.from(trailer.subarray(0, 8)).toString('latin1') !== signatureTag)
    throw new SignatureError('the signature trailer is malformed (bad tag)');
  const id = Buffer.from(trailer.subarray(8, 40));
  if (publicKey !== undefined) {
    const key = publicKeyOf(publicKey);
    if (!id.equals(keyId(key)))
      throw new SignatureError(
        `the bank is signed by key ${id.toString('hex').slice(0, 16)}…, not by the given key ` +
          `${Buffer.from(keyId(key)).toString('hex').slice(0, 16)}…`,
      );
    if (!verify(null, content, key, trailer.subarray(40)))
      throw new SignatureError('the signature does not match the file: it was altered after signing');
  }
  return id.toString('hex');
}
