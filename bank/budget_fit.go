package bank

import (
	"crypto/rsa"
)

// grantSteps is the most bank requests one token takes with provider p:
// a profile's login or refresh steps, whichever are more; one otherwise.
func grantSteps(p Provider) int {
	pp, ok := p.(*profileProvider)
	if !ok {
		return 1
	}
	n := len(pp.p.Steps)
	if r := pp.p.Refresh; r != nil && len(r.Steps) > n {
		n = len(r.Steps)
	}
	return n
}

// validateBudgetFits refuses a request budget smaller than one token
// takes (İşbank's code and token requests with max_requests_per_minute=1):
// it could never succeed, since a grant's requests must all fit.
func (c *Config) validateBudgetFits() error {
	p, ok := c.Lookup()
	if !ok {
		return nil
	}
	n := grantSteps(p)
	l := c.EffectiveLimits()
	for _, w := range []struct {
		field string
		limit int
	}{{FieldMaxRequestsPerMinute, l.PerMinute}, {FieldMaxRequestsPerDay, l.PerDay}} {
		if w.limit > 0 && w.limit < n {
			return fieldErr(w.field, "is %d, but provider %s makes %d requests for one token: it could never get one (set at least %d, or 0 for no limit)",
				w.limit, c.Provider, n, n)
		}
	}
	return nil
}

// CheckClientKeyStrength refuses an mTLS client key that is an RSA key of
// fewer than MinRSAKeyBits bits. Config writes that set tls_client_key call
// it; stored configs are not re-checked, so an upgrade keeps them working.
func (c *Config) CheckClientKeyStrength() error {
	if c.TLSClientKey == "" {
		return nil
	}
	k, err := ParsePrivateKeyPEM(c.TLSClientKey)
	if err != nil {
		return fieldErr(FieldTLSClientKey, "%s", err.Error())
	}
	if rk, ok := k.(*rsa.PrivateKey); ok && rk.N.BitLen() < MinRSAKeyBits {
		return fieldErr(FieldTLSClientKey, "RSA key has %d bits, at least %d are required", rk.N.BitLen(), MinRSAKeyBits)
	}
	return nil
}
