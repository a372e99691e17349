import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { quarkError } from '../core/errors.js';

/** The local account: which runtime the CLI talks to, and with which token. */
export interface Profile {
  url: string;
  token: string;
}

export function profilePath(): string {
  return process.env.QUARK_PROFILE || join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'quark', 'profile.json');
}

export function saveProfile(profile: Profile): string {
  const file = profilePath();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(profile, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

export function removeProfile(): boolean {
  const file = profilePath();
  if (!existsSync(file)) return false;
  rmSync(file);
  return true;
}

/** QUARK_URL / QUARK_TOKEN override the saved profile, field by field. */
export function loadProfile(): Profile {
  let saved: Partial<Profile> = {};
  const file = profilePath();
  if (existsSync(file)) {
    try {
      saved = JSON.parse(readFileSync(file, 'utf8')) as Partial<Profile>;
    } catch {
      throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', `${file} is not valid JSON; run quark login again`);
    }
  }
  const url = process.env.QUARK_URL || saved.url;
  const token = process.env.QUARK_TOKEN || saved.token;
  if (!url || !token) {
    throw quarkError('QUARK_ERR_CLI_NOT_LOGGED_IN', 'not logged in: run quark login --url <runtime URL> --token <token>, or set QUARK_URL and QUARK_TOKEN');
  }
  return { url: url.replace(/\/+$/, ''), token };
}
