package bankauth

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// TestKeyDeleteWaitsForAConfigWriteNamingIt: a key delete that arrives
// while a config naming the key is being written waits for that write,
// then sees the config and is refused; the config keeps working. Before
// config writes took the key's lock, the delete went through in between
// and the config was stored naming no key (issue 18, finding 6).
func TestKeyDeleteWaitsForAConfigWriteNamingIt(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/dp", map[string]any{"type": "ec-p256", "purpose": "dpop"})
	var delResp *logical.Response
	var delErr error
	deleted := make(chan struct{})
	e.b.keys.configWritten = func() {
		go func() {
			delResp, delErr = e.request(t, logical.DeleteOperation, "key/dp", nil)
			close(deleted)
		}()
		select { // with the lock the delete waits for this write: give it time to get in the way
		case <-deleted:
		case <-time.After(300 * time.Millisecond):
		}
	}
	e.mustOK(t, logical.CreateOperation, "config/c", map[string]any{"provider": "oauth2",
		"token_url": "https://as.bank.example/token", "client_id": "c", "client_secret": "s", "dpop_key": "dp"})
	e.b.keys.configWritten = nil
	<-deleted
	if msg := errorText(delResp, delErr); msg != `key "dp" is in use by config c; change or delete those configs first` {
		t.Errorf("a delete racing a config write naming the key: %q", msg)
	}
	if resp, err := e.request(t, logical.ReadOperation, "key/dp", nil); err != nil || resp == nil {
		t.Fatalf("the key is gone: %v", err)
	}
	if _, err := readConfig(t.Context(), e.storage, "c"); err != nil {
		t.Fatal(err)
	}
	cfg, err := (store{e.b, e.storage}).Config(t.Context(), "c")
	if err != nil || cfg.Validate() != nil {
		t.Errorf("the stored config does not work: %v %v", err, cfg.Validate())
	}
}
