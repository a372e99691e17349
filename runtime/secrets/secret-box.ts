import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { quarkError } from '../core/errors.js';

const version = 'v1';

/**
 * Authenticated encryption of secret field values (AES-256-GCM, 96-bit random IV).
 * The additional data binds a ciphertext to its connection and field, so a value
 * cannot be moved to another field or connection in the store and still decrypt.
 */
export interface SecretBox {
  encrypt(plaintext: string, associatedData: string): string;
  decrypt(sealed: string, associatedData: string): string;
}

export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw quarkError('QUARK_ERR_MASTER_KEY_INVALID', 'the master key must be 32 bytes');
  return {
    encrypt(plaintext, associatedData) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(associatedData, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [version, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
    },
    decrypt(sealed, associatedData) {
      const [v, iv, tag, body] = sealed.split('.');
      if (v !== version || !iv || !tag || body === undefined) {
        throw quarkError('QUARK_ERR_SECRET_UNREADABLE', 'a stored secret has an unknown format');
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(associatedData, 'utf8'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
      } catch (error) {
        throw quarkError('QUARK_ERR_SECRET_UNREADABLE', 'a stored secret could not be decrypted (wrong master key or tampered store)', undefined, error);
      }
    },
  };
}

export function generateMasterKey(): Buffer {
  return randomBytes(32);
}

/**
 * The fingerprint of a master key: HMAC-SHA256(key, "quark"), hex. A molecule keeps it in
 * PostgreSQL so that a node can prove it holds the cluster's key without the key (or
 * anything it could be recovered from) ever leaving the node's home.
 */
export function keyFingerprint(key: Buffer): string {
  return createHmac('sha256', key).update('quark').digest('hex');
}
