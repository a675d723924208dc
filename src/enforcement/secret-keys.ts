/**
 * Which keys hold secrets, whatever a policy says: their values are masked wherever Gatehouse records or shows
 * arguments (audit, approval previews, the DLQ, logs), never in what the upstream receives.
 *
 * A key is folded first: compatibility-decomposed (NFKD, so `ｐａｓｓ` is `pass`), combining marks dropped (`pässword`
 * is `password`), cut into words at anything not a letter (`_`, `-`, `.`, spaces, digits) and at camelCase humps, lowercased, `ß` read
 * as `ss`. It is secret
 * when the words run together contain a FRAGMENT, or when one word is a WORD, or contains `pass` outside the
 * ordinary words listed in NOT_PASS (`passenger`, `bypass`, `compass` …). Masking too much costs a less useful
 * record (`max_tokens` is masked); masking too little leaks, so the fragments are broad. Keys written in another
 * script's look-alike letters (a Cyrillic `р`) are not folded to Latin.
 */
const FRAGMENTS = [
  'password', 'passwd', 'passphrase', 'passcode', 'pwd', 'secret', 'token', 'apikey', 'accesskey', 'privatekey',
  'privkey', 'signingkey', 'encryptionkey', 'masterkey', 'sshkey', 'credential', 'authorization', 'authorisation',
  'cookie', 'sessionid', 'sessionkey', 'bearer', 'jwt', 'connectionstring', 'contrasena', 'senha', 'wachtwoord',
];
const WORDS = new Set(['pass', 'pw', 'pin', 'auth', 'oauth', 'authn', 'authentication', 'creds', 'session', 'sid', 'otp', 'totp', 'mfa', 'dsn']);
/** Words with `pass` in them that say nothing secret. */
const NOT_PASS = /passeng|passag|passiv|passport|passthr|passed|passes|passing|passabl|passover|compass|bypass|overpass|underpass|surpass|trespass|impass/;
const SECRET_FRAGMENT = new RegExp(FRAGMENTS.join('|'));

const cache = new Map<string, boolean>();
const CACHE_LIMIT = 4096;

/** Whether values under `key` are secrets (see above). Cached: the same few keys come with every call. */
export function isSecretKey(key: string): boolean {
  let secret = cache.get(key);
  if (secret !== undefined) return secret;
  secret = judge(key);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, secret);
  return secret;
}

function judge(key: string): boolean {
  const words = foldedWords(key);
  if (SECRET_FRAGMENT.test(words.join(''))) return true;
  return words.some((word) => WORDS.has(word) || (word.includes('pass') && !NOT_PASS.test(word)));
}

/** `X-Pässword_2` → `["x", "password"]`; `APIKey` → `["api", "key"]`; `Paßwort` → `["passwort"]`. */
export function foldedWords(key: string): string[] {
  return unmarked(unmarked(key).replace(/(\p{Ll})(\p{Lu})/gu, '$1 $2').replace(/(\p{Lu})(\p{Lu}\p{Ll})/gu, '$1 $2').toLowerCase())
    .replace(/ß/g, 'ss')
    .split(/[^\p{L}]+/u)
    .filter(Boolean);
}

/** Compatibility-decomposed, combining marks dropped (lowercasing can add some: `İ` is `i` and a dot). */
const unmarked = (text: string): string => text.normalize('NFKD').replace(/\p{M}/gu, '');
