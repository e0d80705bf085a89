package broker

import (
	"math"
	"time"
	"unique"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// memToken is what memory keeps of a token: what a reader is handed and
// when it goes stale, with times as unix nanoseconds. The refresh token
// stays in storage only and is read back for a refresh grant (previous),
// and the token type and scope, which most tokens of a mount share, are
// interned: a fifth of an bank.Token and its config key.
type memToken struct {
	access, tokenType, scope string
	obtained, expires        int64 // expires 0: no token
	refreshable              bool  // the bank gave a refresh token
}

// compact is tok as memory keeps it (none for nil).
func compact(tok *bank.Token) memToken {
	if tok == nil {
		return memToken{}
	}
	return memToken{
		access:      tok.AccessToken,
		tokenType:   intern(tok.TokenType),
		scope:       intern(tok.Scope),
		obtained:    nanos(tok.ObtainedAt),
		expires:     max(nanos(tok.ExpiresAt), 1),
		refreshable: tok.RefreshToken != "",
	}
}

// maxTime is the latest time unix nanoseconds hold (in 2262); a bank's
// "never" is kept as that.
var maxTime = time.Unix(0, math.MaxInt64)

// nanos is t in unix nanoseconds, held within what an int64 can say.
func nanos(t time.Time) int64 {
	switch {
	case t.After(maxTime):
		return math.MaxInt64
	case t.Before(time.Unix(0, 0)):
		return 0
	}
	return t.UnixNano()
}

// intern returns the one shared copy of s.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// none reports whether there is no token.
func (t *memToken) none() bool { return t.expires == 0 }

// freshAt reports whether the token may still be handed out at now.
func (t *memToken) freshAt(now time.Time) bool { return t.expires != 0 && now.UnixNano() < t.staleAt() }

// staleAt is bank.Token.StaleAt in unix nanoseconds.
func (t *memToken) staleAt() int64 {
	return t.expires - int64(bank.RefreshMargin(time.Duration(t.expires-t.obtained)))
}

// usableAt reports whether the token still has life left at now to be
// served when no fresher one can be had.
func (t *memToken) usableAt(now time.Time) bool {
	return t.expires != 0 && now.Add(UsableMargin).UnixNano() < t.expires
}

func (t *memToken) expiresAt() time.Time { return time.Unix(0, t.expires).UTC() }

// token is the token as readers get it, without its refresh token.
func (t *memToken) token() bank.Token {
	return bank.Token{
		AccessToken: t.access, TokenType: t.tokenType, Scope: t.scope,
		ObtainedAt: time.Unix(0, t.obtained).UTC(), ExpiresAt: t.expiresAt(),
	}
}
