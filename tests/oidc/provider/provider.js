// A real, certified OpenID Provider (oidc-provider) for the tests, on plain http on loopback.
// Usage: node provider.js CONFIG.json, where CONFIG.json (written by
// tests/support/oidc_provider.py) holds:
//   {"port", "issuer", "clients": [{client_id, client_secret, redirect_uris,
//    token_endpoint_auth_method}], "accounts": [{sub, email, email_verified, name, password}],
//    "jwks": {"keys": [private RS256 JWKs, each with a kid]}, "cookie_keys": [strings]}
// Everything lives in memory (the default adapter): a restart forgets sessions, codes, grants.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts;

const provider = new Provider(config.issuer, {
  // Confidential clients of the authorization code grant only.
  clients: config.clients.map((client) => ({
    ...client,
    grant_types: ['authorization_code'],
    response_types: ['code'],
  })),
  responseTypes: ['code'],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  jwks: config.jwks,
  cookies: { keys: config.cookie_keys },
  scopes: ['openid', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // By default the claims of a scope go to the userinfo endpoint only, whenever an access
  // token is issued too (OpenID Connect Core 5.4); the service reads them from the ID token.
  conformIdTokenClaims: false,
  // oidc-provider only supports S256; this makes PKCE mandatory for confidential clients too.
  pkce: { required: () => true },
  // The built-in development forms accept any login without a password; the routes below
  // check one, and their consent form can deny.
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const account = accounts.find((candidate) => candidate.sub === sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        const { email, email_verified: emailVerified, name } = account;
        return { sub, email, email_verified: emailVerified, name };
      },
    };
  },
  // Short lifetimes, set explicitly (the defaults log a warning each).
  ttl: {
    AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Grant: 600, Interaction: 600, Session: 600,
  },
});

const esc = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>`
    + `<body><h1>${esc(title)}</h1>${body}</body></html>`;
}

function loginPage(uid, error) {
  return page('Sign in', `${error ? `<p class="error">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
  <input type="hidden" name="prompt" value="login">
  <input type="text" name="login" placeholder="email">
  <input type="password" name="password">
  <button type="submit">Sign in</button>
</form>`);
}

function consentPage(uid, details) {
  const scopes = (details.missingOIDCScope || []).join(' ');
  return page('Authorize', `<p>The application asks for: ${esc(scopes)}</p>
<form method="post" action="/interaction/${esc(uid)}/consent">
  <input type="hidden" name="prompt" value="consent">
  <button type="submit" name="decision" value="allow">Allow</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>`);
}

async function formBody(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return new URLSearchParams(text);
}

// The consent grant, as oidc-provider's own development interactions build it.
async function grantFor(interaction) {
  const { grantId, session, params, prompt: { details } } = interaction;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  return grant.save();
}

// The interaction routes. oidc-provider's own routes come first and end the request when they
// match; anything else falls through to here. The interaction cookie is scoped to the path
// /interaction/<uid>, so the forms post below it.
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([\w-]+)(?:\/(login|consent))?$/);
  if (!match) return next();
  ctx.set('Cache-Control', 'no-store');
  const [, uid, step] = match;
  const interaction = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt } = interaction;
  ctx.type = 'html';

  if (ctx.method === 'GET' && !step) {
    ctx.body = prompt.name === 'login' ? loginPage(uid) : consentPage(uid, prompt.details);
    return;
  }
  if (ctx.method !== 'POST' || step !== prompt.name) ctx.throw(400, 'unexpected interaction step');

  const form = await formBody(ctx.req);
  let result;
  if (step === 'login') {
    const login = form.get('login');
    const account = accounts.find((candidate) => candidate.email === login || candidate.sub === login);
    if (!account || account.password !== form.get('password')) {
      ctx.status = 401;
      ctx.body = loginPage(uid, 'Wrong email or password.');
      return;
    }
    result = { login: { accountId: account.sub } };
  } else if (form.get('decision') === 'allow') {
    result = { consent: { grantId: await grantFor(interaction) } };
  } else {
    result = { error: 'access_denied', error_description: 'End-User denied the authorization' };
  }
  // Back to the authorization endpoint, which resumes and redirects to the client.
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: step === 'consent',
  });
  ctx.status = 303;
  ctx.redirect(returnTo);
});

// A line per request and the reason of each refusal, for the log a failing test prints.
for (const event of ['authorization.error', 'grant.error', 'server_error']) {
  provider.on(event, (ctx, error) => console.log(`${event}: ${error.message} ${error.error_description || ''}`));
}
const handle = provider.callback();
createServer((req, res) => {
  res.on('finish', () => console.log(`${req.method} ${req.url.split('?')[0]} ${res.statusCode}`));
  handle(req, res);
}).listen(config.port, '127.0.0.1', () => console.log(`oidc-provider listening on ${config.issuer}`));
