// Package broker owns the token lifecycle of every bank connection of a
// bankauth mount: which connections exist, the cached token, single flight, serve-while-valid, failure
// backoff, the request budget, background refresh and the counters that
// status and metrics show. It knows nothing of Vault: storage reaches it
// through Store, time through an injected clockwork.Clock.
//
// A read of a name goes like this (get.go):
//
//   - Cached answers from memory, without a lock or a storage round trip,
//     when the name's token is fresh (FreshAt: before four fifths of its
//     life). Only names whose config exists have state at all.
//   - Otherwise Get takes the name's lock (one bank request at a time per
//     name however many readers wait), loads config and stored token if
//     memory has none, and returns the token if it is fresh by now (another
//     reader fetched it while this one waited).
//   - A stale token is replaced: unless the name is backing off after a
//     failure, the bank is asked (by refresh grant where there is one: the
//     refresh token is read back from storage, memory never holds it), the
//     new token is stored and only then handed out, and its background
//     refresh is planned.
//   - If no new token can be had and the old one still has life left, the
//     old one is served with a warning naming the failure (serve-while-valid);
//     a reader holding such a token waits at most StaleWaitLimit for another
//     reader's bank request.
//
// Background refresh (schedule.go) is one goroutine and one timer for all
// names: a token that readers use is renewed at 70% of its life, once per
// token, never sooner than MinBackgroundLead after it arrived (a token too
// short-lived for that is left to readers), and not at all once nobody has
// read it for the config's background_refresh_idle.
//
// Memory per name is what a cached read needs (conn.go, token.go): about
// 530 bytes with a token, nothing per name for locks, timers or clients.
//
// Consent tokens (consent*.go; issue 19) follow the same lifecycle per user
// consent of an authorization_code config: CachedConsent for the fast path,
// ConsentToken and RefreshConsent otherwise, state only for consents that
// were read (about 290 bytes plus the access token), one renewal at a time
// per consent, background refresh through the same scheduler. What a
// consent is and how it is renewed (the refresh grant with rotation, its
// new refresh token stored before it returns) belongs to a ConsentSource;
// a renewal refused for good (*ReauthError) drops the consent from memory
// and from the scheduler. The scheduler also removes expired consent
// attempts (ExpireAttemptAt, PlanAttemptSweep).
//
// Config changes go through Change and Remove, which drop the in-memory
// state even when the storage write failed half way; a fetch that started
// under an older config never stores or serves its token over a newer one.
package broker
