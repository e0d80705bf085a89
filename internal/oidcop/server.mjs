// A FAPI 2.0 authorization server for bankauth's consent tests: panva's
// oidc-provider (certified by the OpenID Foundation), configured from the
// JSON file named by the first argument, with an automated user.
//
// Usage: node server.mjs config.json   (OIDC_PROVIDER_DIR names the
// directory holding node_modules/oidc-provider; see
// scripts/install-oidc-provider.sh). Listens on 127.0.0.1 only.
//
// The automated user: a browser-like client that follows the authorization
// URL reaches /interaction/<uid>, which logs in the account named by the
// X-Test-User header (default "alice") and grants what was asked, or, with
// X-Test-Decision: deny, answers access_denied. Test-only endpoints under
// /_test/ let a test withdraw an account's grants at the bank.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const conf = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { default: Provider } = await import(
  pathToFileURL(join(process.env.OIDC_PROVIDER_DIR, 'node_modules', 'oidc-provider', 'lib', 'index.js')).href);

// ID tokens are signed with keys made at start: ES256 and PS256.
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const grantsByAccount = new Map(); // accountId -> Set of grant ids

const provider = new Provider(conf.issuer, {
  clients: conf.clients,
  jwks: { keys: [{ ...ec, alg: 'ES256', use: 'sig', kid: 'es256' }, { ...rsa, alg: 'PS256', use: 'sig', kid: 'ps256' }] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'accounts', 'payments'],
  claims: { openid: ['sub'] },
  findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  clientAuthMethods: ['private_key_jwt'],
  enabledJWA: {
    clientAuthSigningAlgValues: ['PS256', 'ES256', 'EdDSA'],
    idTokenSigningAlgValues: ['PS256', 'ES256', 'EdDSA'],
    dPoPSigningAlgValues: ['PS256', 'ES256', 'EdDSA'],
    requestObjectSigningAlgValues: ['PS256', 'ES256', 'EdDSA'],
  },
  features: {
    devInteractions: { enabled: false },
    fapi: { enabled: conf.fapi !== '', profile: conf.fapi || undefined },
    pushedAuthorizationRequests: { enabled: !conf.noPAR, requirePushedAuthorizationRequests: !conf.noPAR },
    dPoP: {
      enabled: true,
      nonceSecret: conf.dpopNonce ? randomBytes(32) : undefined,
      requireNonce: () => !!conf.dpopNonce,
    },
    revocation: { enabled: true },
    richAuthorizationRequests: {
      enabled: true,
      types: { account_information: { validate() {} }, payment_initiation: { validate() {} } },
    },
    claimsParameter: { enabled: true },
  },
  // Every refresh rotates the refresh token; a rotated one sent again is
  // reuse, which revokes the whole grant (as strict banks do).
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: conf.accessTokenTTL || 60,
    RefreshToken: conf.refreshTokenTTL || 86400,
    Grant: conf.refreshTokenTTL || 86400,
    Interaction: 600,
    Session: 600,
    IdToken: 600,
    PushedAuthorizationRequest: 60,
  },
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId;
    return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
  },
});
provider.proxy = false;

// interaction is the automated user.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  const account = String(req.headers['x-test-user'] || 'alice');
  if (req.headers['x-test-decision'] === 'deny') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user declined' },
      { mergeWithLastSubmission: false });
  }
  if (prompt.name === 'login') {
    return provider.interactionFinished(req, res, { login: { accountId: account } }, { mergeWithLastSubmission: false });
  }
  const grant = new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  if (params.scope) grant.addOIDCScope(params.scope);
  if (params.claims) grant.addOIDCClaims(Object.keys(JSON.parse(params.claims).id_token || {}));
  if (params.authorization_details) {
    for (const d of JSON.parse(params.authorization_details)) grant.addRar(d);
  }
  const grantId = await grant.save();
  if (!grantsByAccount.has(details.session.accountId)) grantsByAccount.set(details.session.accountId, new Set());
  grantsByAccount.get(details.session.accountId).add(grantId);
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

// withdraw revokes every grant of an account, as a user withdrawing consent
// in their bank's app does: its refresh tokens stop working.
async function withdraw(req, res, account) {
  let n = 0;
  for (const id of grantsByAccount.get(account) || []) {
    const grant = await provider.Grant.find(id);
    if (grant) { await grant.destroy(); n += 1; }
    await Promise.all(['RefreshToken', 'AccessToken', 'AuthorizationCode']
      .map((model) => provider[model].adapter.revokeByGrantId(id)));
  }
  grantsByAccount.delete(account);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ withdrawn: n }));
}

const callback = provider.callback();
const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, conf.issuer);
    if (url.pathname.startsWith('/interaction/')) return await interaction(req, res);
    if (url.pathname === '/_test/events') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(events));
    }
    if (url.pathname === '/_test/withdraw' && req.method === 'POST') {
      return await withdraw(req, res, url.searchParams.get('account'));
    }
    return callback(req, res);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(`oidcop: ${err && err.message}`);
  }
});
// Token events, by name only (never a token), so tests can count what the
// bank did: refreshes (refresh_token.consumed, when rotating), revocations
// (refresh_token.destroyed), codes redeemed (authorization_code.consumed).
// They are counted in memory as they fire (before the answer is sent) and
// served at /_test/events, so a count read after an answer includes it.
const events = {};
for (const ev of ['refresh_token.consumed', 'refresh_token.destroyed', 'authorization_code.consumed', 'grant.revoked']) {
  provider.on(ev, () => { events[ev] = (events[ev] || 0) + 1; console.log(`oidcop event ${ev}`); });
}
provider.on('server_error', (_ctx, err) => console.error('oidcop server_error', err));
server.listen(conf.port, '127.0.0.1', () => console.log(`oidcop listening on ${conf.issuer}`));
