package bank

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// MaxLifetime bounds the lifetime a bank may grant, so a garbled expires_in
// cannot pin a token in the cache for years.
const MaxLifetime = 366 * 24 * time.Hour

// jwtExpiry reads the exp claim of a JWT without verifying it: the bank is
// the party that checks the token; bankauth only needs to know its life.
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(*claims.Exp), 0), true
}
