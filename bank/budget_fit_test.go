package bank_test

import (
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// A budget smaller than one token's requests could never succeed (İşbank
// takes two: code, then token); it is refused naming the field.
func TestBudgetSmallerThanAGrantIsRefused(t *testing.T) {
	one, two := 1, 2
	cfg := configFor(t, emulator.Isbank, "https://bank.example")
	cfg.MaxRequestsPerMinute = &one
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "max_requests_per_minute: is 1, but provider isbank makes 2 requests") {
		t.Fatalf("isbank 1/minute: %v", err)
	}
	cfg.MaxRequestsPerMinute, cfg.MaxRequestsPerDay = &two, &one
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "max_requests_per_day") {
		t.Fatalf("isbank 1/day: %v", err)
	}
	cfg.MaxRequestsPerDay = &two
	if err := cfg.Validate(); err != nil {
		t.Fatalf("isbank 2/minute 2/day: %v", err)
	}
	etz := configFor(t, emulator.Etranzact, "https://bank.example")
	etz.MaxRequestsPerMinute = &one
	if err := etz.Validate(); err != nil {
		t.Fatalf("one-step provider with 1/minute: %v", err)
	}
	_, err := bank.ParseProfile([]byte(`{"limits": {"per_minute": 1}, "steps": [
	  {"name": "a", "method": "POST", "path": "/a", "extract": {"c": "code"}},
	  {"name": "b", "method": "POST", "path": "/b", "query": {"c": "{{step.a.c}}"}}]}`))
	if err == nil || !strings.Contains(err.Error(), "limits.per_minute") {
		t.Fatalf("profile limits below its steps: %v", err)
	}
}
