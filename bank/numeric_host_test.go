package bank_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// numericHosts are IPv4 addresses in the forms a classic inet_aton (and so
// many proxies' resolvers) reads: one to four parts, decimal, octal with a
// leading 0, hex with 0x. Each means a loopback or link-local address, or
// cannot be read at all.
var numericHosts = []string{
	"2130706433",          // 127.0.0.1 as one decimal number
	"0177.0.0.1",          // octal first part
	"127.1",               // two parts
	"0x7f.1",              // hex first part
	"0x7F000001",          // one hex number
	"169.254.43518",       // 169.254.169.254 in three parts
	"0251.0376.0251.0376", // 169.254.169.254, all octal
	"127.0.0.1.",          // a trailing dot
	"1.2.3.09",            // not valid octal: still a number, so an address
	"99999999999",         // too large for an address
	"bank.example.0x10",   // a name whose last label is a number
}

// Hosts that end in a number are IPv4 addresses: anything but the
// dotted-decimal form is refused by every URL check, and the error names
// the field and the rule without quoting the host.
func TestNumericHostsAreRefusedAsAddresses(t *testing.T) {
	for _, h := range numericHosts {
		checkRefused := func(what string, err error, field string) {
			t.Helper()
			var fe *bank.FieldError
			if !errors.As(err, &fe) || fe.Field != field {
				t.Errorf("%s %s: err = %v, want a FieldError on %s", what, h, err, field)
				return
			}
			if strings.Contains(err.Error(), h) || !strings.Contains(fe.Message, "IPv4") {
				t.Errorf("%s %s: %q quotes the host or does not say which rule it broke", what, h, err)
			}
		}
		checkRefused("base_url", bank.ValidateBaseURL("https://"+h+"/api"), "base_url")
		checkRefused("token_url", oauthConfig("https://"+h+"/token", nil, map[string]string{"client_secret": "s"}).Validate(), "token_url")
		doc := `{"steps": [{"name": "token", "method": "POST", "url": "https://` + h + `/token"}]}`
		if _, err := bank.ParseProfile([]byte(doc)); err == nil || !strings.Contains(err.Error(), "steps[0].url") ||
			strings.Contains(err.Error(), h) || !strings.Contains(err.Error(), "IPv4") {
			t.Errorf("profile step url %s: err = %v, want a steps[0].url refusal that does not quote the host", h, err)
		}
	}
	for _, ok := range []string{"203.0.113.7", "bank.example", "api2.bank.example", "1bank.example", "bank.example.123abc", "[2001:db8::1]"} {
		if err := bank.ValidateBaseURL("https://" + ok + "/api"); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
