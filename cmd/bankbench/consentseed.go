package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	bankauth "github.com/bankauth/vault-plugin-secrets-bankauth"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// Consents are seeded through Vault's sys/raw (the bench's Vault has
// raw_storage_endpoint = true): an authorized consent needs a user at an
// authorization server for each, and the product has no way, hidden or
// not, to write one without. sys/raw writes the mount's storage entries
// through the barrier as the plugin's own writes would (seal wrapping is
// Enterprise only), under logical/<mount uuid>/. Each record is what the
// plugin stores for an authorized consent (consent_store.go's
// consentRecord); the phase reads every seeded token back through the
// plugin, which fails on a record it cannot use.

// consentSeedRecord mirrors the stored consentRecord's JSON.
type consentSeedRecord struct {
	State        string      `json:"state"`
	Token        *fapi.Token `json:"token,omitempty"`
	Sub          string      `json:"sub,omitempty"`
	Scope        string      `json:"scope,omitempty"`
	CreatedAt    time.Time   `json:"created_at"`
	AuthorizedAt time.Time   `json:"authorized_at,omitzero"`
}

// consentID is the i-th seeded id: zero-padded, so that sorted order is
// numeric order and all share one prefix, the hard case for a prefix shard.
func consentID(i int) string { return fmt.Sprintf("user-%07d", i) }

// mountUUID is the storage UUID of a mount (its storage is under
// logical/<uuid>/).
func mountUUID(s *vaulttest.Server, mount string) (string, error) {
	m, err := s.Client.Sys().ListMounts()
	if err != nil {
		return "", err
	}
	out, ok := m[strings.TrimSuffix(mount, "/")+"/"]
	if !ok || out.UUID == "" {
		return "", fmt.Errorf("no mount %s in sys/mounts", mount)
	}
	return out.UUID, nil
}

// rawPut writes one storage entry of the mount through sys/raw.
func (b *bench) rawPut(s *vaulttest.Server, uuid, key string, value []byte) error {
	body, _ := json.Marshal(map[string]string{"value": string(value)})
	req, err := http.NewRequest(http.MethodPut, url(s, "sys/raw/logical/"+uuid+"/"+key), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", s.RootToken)
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sys/raw put %s: HTTP %d: %s", key, resp.StatusCode, msg)
	}
	return nil
}

// seedConsents writes n authorized consents of config, ids consentID(0..n),
// each with a fresh access token (an hour left) and a refresh token, and the
// config's consent index holding exactly them.
func (b *bench) seedConsents(s *vaulttest.Server, uuid, config string, n int) error {
	now := time.Now().UTC().Truncate(time.Second)
	err := parallel(0, n, 16, func(i int) error {
		id := consentID(i)
		rec := consentSeedRecord{
			State: "authorized", Sub: "sub-" + id, Scope: "openid accounts offline_access",
			CreatedAt: now, AuthorizedAt: now,
			Token: &fapi.Token{AccessToken: fmt.Sprintf("at-%s-%x", id, now.UnixNano()), TokenType: "DPoP",
				Scope: "openid accounts offline_access", ExpiresAt: now.Add(time.Hour),
				RefreshToken: fmt.Sprintf("rt-%s-%x", id, now.UnixNano()), IssuedAt: now},
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return b.rawPut(s, uuid, "consent/"+config+"/"+id, v)
	})
	if err != nil {
		return err
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = consentID(i)
	}
	ents, err := bankauth.ConsentIndexEntries(config, ids)
	if err != nil {
		return err
	}
	return parallel(0, len(ents), 8, func(i int) error { return b.rawPut(s, uuid, ents[i].Key, ents[i].Value) })
}
