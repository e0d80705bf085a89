//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// TestHAFailover runs bankauth on a 3-node Vault cluster with integrated
// (raft) storage, the plugin binary in every node's plugin directory and
// registered once (the catalog is replicated):
//
//   - reads through any node (standbys forward to the active node) get the
//     same token, for one bank request per config;
//   - after the active node is killed with SIGKILL, the new active node
//     serves the stored token without asking the bank, and once a token is
//     stale, a crowd reading it through every node costs one bank request;
//   - a forced refresh (vault write -f) through a standby costs exactly one
//     bank request, and every node then serves the new token.
func TestHAFailover(t *testing.T) {
	t.Parallel()
	began := time.Now()
	c, err := vaulttest.StartCluster(3, vaulttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("3-node raft cluster ready in %s", time.Since(began).Round(time.Second))
	var handed []string
	defer func() { closeCluster(t, c, handed) }()

	active, err := c.WaitActive()
	if err != nil {
		t.Fatal(err)
	}
	if err := active.RegisterPlugin("bankauth"); err != nil {
		t.Fatal(err)
	}
	b := newBank(t, active)
	for _, p := range emulator.Providers {
		// Long-lived tokens: the stored token stays fresh however slow the
		// failover, so any bank request after it is bankauth's doing.
		b.emu.SetTTL(p, time.Hour)
		b.configure(t, p, p)
	}

	want := map[string]string{}
	for _, node := range c.Nodes {
		for _, p := range emulator.Providers {
			tok := readVia(t, node, b.mount, p)
			handed = append(handed, tok)
			if want[p] == "" {
				want[p] = tok
			} else if tok != want[p] {
				t.Errorf("%s: node %s served another token than the first node", p, node.Addr)
			}
		}
	}
	wantFetches(t, b, 1, "after reads through all three nodes")
	// A second bank whose token goes stale after the failover: the new
	// active node then makes one bank request for a crowd of readers.
	short := newBank(t, active)
	short.emu.SetTTL(emulator.Rakbank, 30*time.Second)
	short.configure(t, "short", emulator.Rakbank)
	shortTok := readVia(t, active, short.mount, "short")
	handed = append(handed, shortTok)
	shortExp, ok := short.emu.TokenExpiry(emulator.Rakbank, shortTok)
	if !ok {
		t.Fatal("the bank does not know the token it issued")
	}

	failStart := time.Now()
	active.Kill()
	// What a reader sees while the cluster has no active node (for the
	// fault matrix; not asserted: it depends on how far the election got).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = c.Standbys(active)[0].Client.Logical().ReadWithContext(ctx, b.mount+"/token/"+emulator.Rakbank)
	cancel()
	t.Logf("a read during the election: err=%v", err)
	next, err := c.WaitActive()
	if err != nil {
		t.Fatal(err)
	}
	if next == active {
		t.Fatal("the killed node is still named active")
	}
	t.Logf("new active node %s after %s", next.Addr, time.Since(failStart).Round(time.Second))
	for _, node := range c.Running() {
		for _, p := range emulator.Providers {
			if tok := readVia(t, node, b.mount, p); tok != want[p] {
				handed = append(handed, tok)
				t.Errorf("%s: after failover node %s served a new token", p, node.Addr)
			}
		}
	}
	// The stored token is valid: the new active node must not ask the bank.
	wantFetches(t, b, 1, "after failover")

	// Once the short token is stale (a fifth of its life left: 6s), readers
	// on every node at once cost one bank request.
	if wait := time.Until(shortExp.Add(-5 * time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	crowd := crowdRead(c.Running(), short.mount+"/token/short", 10)
	for _, err := range crowd.errs {
		t.Error(err)
	}
	if len(crowd.tokens) != 1 || crowd.tokens[shortTok] {
		t.Errorf("a crowd reading a stale token through every node got tokens %v, want one new token", crowd.tokens)
	}
	for tok := range crowd.tokens {
		handed = append(handed, tok)
	}
	if st := short.emu.Stats(emulator.Rakbank); fetches(st) != 2 || st.Failed != 0 {
		t.Errorf("after the stale token was read by a crowd on every node: bank stats %+v, want 2 token requests", st)
	}

	standby := c.Standbys(next)[0]
	for _, p := range emulator.Providers {
		out, err := standby.MustCLI("write", "-f", "-field=access_token", b.mount+"/token/"+p)
		if err != nil {
			t.Fatal(err)
		}
		tok := strings.TrimSpace(out)
		handed = append(handed, tok)
		if tok == "" || tok == want[p] {
			t.Errorf("%s: forced refresh through a standby returned %q, want a new token", p, tok)
		}
		if !b.emu.TokenValid(p, tok) {
			t.Errorf("%s: the forced token is not valid at the bank", p)
		}
		want[p] = tok
	}
	wantFetches(t, b, 2, "after one forced refresh through a standby")
	for _, node := range c.Running() {
		for _, p := range emulator.Providers {
			if tok := readVia(t, node, b.mount, p); tok != want[p] {
				handed = append(handed, tok)
				t.Errorf("%s: node %s did not serve the forced token", p, node.Addr)
			}
		}
	}
	wantFetches(t, b, 2, "after reads of the forced token")
}

// crowdResult is what a crowd of readers got: each distinct token, and
// every failure.
type crowdResult struct {
	tokens map[string]bool
	errs   []error
}

// crowdRead has perNode readers on each node read path at once.
func crowdRead(nodes []*vaulttest.Server, path string, perNode int) crowdResult {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		res = crowdResult{tokens: map[string]bool{}}
	)
	start := make(chan struct{})
	for _, node := range nodes {
		for range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				sec, err := node.Client.Logical().Read(path)
				mu.Lock()
				defer mu.Unlock()
				if err != nil || sec == nil {
					res.errs = append(res.errs, fmt.Errorf("read %s through %s: %v", path, node.Addr, err))
					return
				}
				tok, _ := sec.Data["access_token"].(string)
				seen.add(tok)
				res.tokens[tok] = true
			}()
		}
	}
	close(start)
	wg.Wait()
	return res
}

// readVia reads <mount>/token/<name> through one node with vault/api.
func readVia(t *testing.T, node *vaulttest.Server, mount, name string) string {
	t.Helper()
	sec, err := node.Client.Logical().Read(mount + "/token/" + name)
	if err != nil || sec == nil {
		t.Fatalf("read %s/token/%s through %s: %v", mount, name, node.Addr, err)
	}
	tok, _ := sec.Data["access_token"].(string)
	if tok == "" {
		t.Fatalf("read %s/token/%s through %s: no access_token", mount, name, node.Addr)
	}
	seen.add(tok)
	return tok
}

// fetches is how many tokens the bank issued or refused for provider: every
// request to its token endpoint (İşbank's code requests are its first step
// of a fetch, not a fetch of their own).
func fetches(st emulator.Stats) int { return st.Total - st.Codes }

// wantFetches fails unless every provider's token endpoint saw n requests,
// all successful.
func wantFetches(t *testing.T, b *bankMount, n int, when string) {
	t.Helper()
	for _, p := range emulator.Providers {
		if st := b.emu.Stats(p); fetches(st) != n || st.Failed != 0 {
			t.Errorf("%s %s: bank stats %+v, want %d token requests", p, when, st, n)
		}
	}
}

// closeCluster stops the cluster, fails the test if the race-built plugin
// reported a race or a handed-out token appears in any node's log, and keeps
// the logs of a failed test.
func closeCluster(t *testing.T, c *vaulttest.Cluster, handed []string) {
	c.Stop()
	logs := c.Logs()
	if strings.Contains(logs, "WARNING: DATA RACE") {
		t.Error("the plugin reported a data race in a node's log")
	}
	for _, tok := range handed {
		if tok != "" && strings.Contains(logs, tok) {
			t.Error("an access token appears in a node's log")
			break
		}
	}
	if t.Failed() {
		t.Logf("node logs kept: %s", strings.Join(c.LogPaths(), " "))
		return
	}
	c.Close()
}
