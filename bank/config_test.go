package bank_test

import (
	"errors"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

func TestValidateNamesTheField(t *testing.T) {
	ok := func() *bank.Config {
		return &bank.Config{Provider: "rakbank", Settings: map[string]string{"client_id": "id", "scope": "accounts"},
			Secrets: map[string]string{"client_secret": "s"}}
	}
	cases := []struct {
		name   string
		mutate func(*bank.Config)
		field  string
	}{
		{"no provider", func(c *bank.Config) { c.Provider = "" }, "provider"},
		{"unknown provider", func(c *bank.Config) { c.Provider = "hsbc" }, "provider"},
		{"missing required", func(c *bank.Config) { delete(c.Settings, "scope") }, "scope"},
		{"missing secret", func(c *bank.Config) { delete(c.Secrets, "client_secret") }, "client_secret"},
		{"foreign field", func(c *bank.Config) { c.Settings["username"] = "u" }, "username"},
		{"foreign secret", func(c *bank.Config) { c.Secrets["password"] = "p" }, "password"},
		{"http remote", func(c *bank.Config) { c.BaseURL = "http://bank.example" }, "base_url"},
		{"ftp", func(c *bank.Config) { c.BaseURL = "ftp://bank.example" }, "base_url"},
		{"relative", func(c *bank.Config) { c.BaseURL = "/v1" }, "base_url"},
		{"userinfo", func(c *bank.Config) { c.BaseURL = "https://u:p@bank.example" }, "base_url"},
		{"bad pem", func(c *bank.Config) { c.CACert = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----" }, "ca_cert"},
		{"timeout", func(c *bank.Config) { c.Timeout = 2 * time.Minute }, "timeout"},
		{"metadata elsewhere", func(c *bank.Config) {
			c.Provider = "accelerationcloud"
			c.Settings = map[string]string{"client_id": "i", "user_id": "u"}
			c.OAuthMetadata = map[string]any{"a": "b"}
		}, "oauth_metadata"},
		{"isbank without base_url", func(c *bank.Config) {
			c.Provider = "isbank"
			c.Settings = map[string]string{"client_id": "i", "service_account_id": "a"}
			c.Secrets = map[string]string{"client_secret": "s", "service_account_secret": "t"}
		}, "base_url"},
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.mutate(c)
			var fe *bank.FieldError
			if err := c.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate() = %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
	for _, u := range []string{"http://127.0.0.1:8300", "http://localhost:1", "http://[::1]:80", "https://bank.example/api"} {
		c := ok()
		c.BaseURL = u
		if err := c.Validate(); err != nil {
			t.Errorf("base_url %s rejected: %v", u, err)
		}
	}
}

func TestCacheKeyCoversWhatTheTokenDependsOn(t *testing.T) {
	base := func() *bank.Config {
		return &bank.Config{Provider: "rakbank", Settings: map[string]string{"client_id": "id", "scope": "accounts"},
			Secrets: map[string]string{"client_secret": "s"}, OAuthMetadata: map[string]any{"account_id": "1"}}
	}
	key := base().CacheKey()
	if key != base().CacheKey() {
		t.Fatal("CacheKey is not stable")
	}
	for name, change := range map[string]func(*bank.Config){
		"scope":          func(c *bank.Config) { c.Settings["scope"] = "payments" },
		"oauth_metadata": func(c *bank.Config) { c.OAuthMetadata["account_id"] = "2" },
		"client_id":      func(c *bank.Config) { c.Settings["client_id"] = "other" },
		"base_url":       func(c *bank.Config) { c.BaseURL = "https://other.example" },
		"provider":       func(c *bank.Config) { c.Provider = "accelerationcloud" },
	} {
		c := base()
		change(c)
		if c.CacheKey() == key {
			t.Errorf("changing %s keeps the cache key", name)
		}
	}
	c := base()
	c.Secrets["client_secret"] = "rotated"
	if c.CacheKey() != key {
		t.Error("the cache key depends on a secret value")
	}
}
