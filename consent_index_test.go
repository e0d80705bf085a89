package bankauth

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// opCountingStorage counts the calls a list makes.
type opCountingStorage struct {
	logical.Storage
	gets, lists atomic.Int64
}

func (c *opCountingStorage) Get(ctx context.Context, k string) (*logical.StorageEntry, error) {
	c.gets.Add(1)
	return c.Storage.Get(ctx, k)
}

func (c *opCountingStorage) List(ctx context.Context, p string) ([]string, error) {
	c.lists.Add(1)
	return c.Storage.List(ctx, p)
}

// indexIDs are n ids under the naming rule, in random order, sharing
// prefixes the way apps name users ("user-000123", "u.1", "U_9", "7").
func indexIDs(n int) []string {
	shapes := []string{"user-%06d", "u.%d", "U_%d", "%d", "a%d-b"}
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, fmt.Sprintf(shapes[i%len(shapes)], i))
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids
}

// Pages across index pages come out sorted, after is exclusive (whether or
// not it is an id), and a page reads the directory and at most the pages
// its ids come from.
func TestConsentIndexPagesAcrossPages(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	ids := indexIDs(3*consentPageMax + 7)
	for _, id := range ids {
		if err := e.b.indexConsent(ctx, e.storage, "ob", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.b.indexConsent(ctx, e.storage, "ob", ids[0]); err != nil { // again: no duplicate
		t.Fatal(err)
	}
	slices.Sort(ids)
	d, _ := readConsentDir(ctx, e.storage, "ob")
	if len(d.Pages) < 4 {
		t.Fatalf("%d ids in %d pages", len(ids), len(d.Pages))
	}
	all, err := listConsentIDs(ctx, e.storage, "ob", "", 0)
	if err != nil || !slices.Equal(all, ids) {
		t.Fatalf("list all: %d ids, err %v; want %d sorted", len(all), err, len(ids))
	}
	// Walk in pages of 97, as a client passing the last id as after.
	cs := &opCountingStorage{Storage: e.storage}
	var walked []string
	for after := ""; ; {
		page, err := listConsentIDs(ctx, cs, "ob", after, 97)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		walked = append(walked, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(walked, ids) {
		t.Fatalf("walked %d ids, want %d sorted", len(walked), len(ids))
	}
	if cs.lists.Load() != 0 {
		t.Errorf("pages made %d List calls, want none", cs.lists.Load())
	}
	pages := int64(len(ids)/97 + 2)
	if got := cs.gets.Load(); got > 3*pages {
		t.Errorf("%d pages made %d storage reads, want at most 3 each", pages, got)
	}
	// Boundaries: each page's first id, an id not stored, before all, the last.
	for _, p := range d.Pages[1:] {
		got, _ := listConsentIDs(ctx, e.storage, "ob", p.First, 2)
		at, _ := slices.BinarySearch(ids, p.First)
		if !slices.Equal(got, ids[at+1:at+3]) {
			t.Errorf("after page start %q: %v, want %v", p.First, got, ids[at+1:at+3])
		}
		prev := ids[at-1]
		if got, _ := listConsentIDs(ctx, e.storage, "ob", prev, 1); !slices.Equal(got, []string{p.First}) {
			t.Errorf("after %q (last of a page): %v, want %s", prev, got, p.First)
		}
	}
	if got, _ := listConsentIDs(ctx, e.storage, "ob", "0", 1); !slices.Equal(got, ids[:1]) && ids[0] != "0" {
		t.Errorf("after 0: %v", got)
	}
	if got, _ := listConsentIDs(ctx, e.storage, "ob", "user-000005x", 1); len(got) != 1 || got[0] <= "user-000005x" {
		t.Errorf("after an id not stored: %v", got)
	}
	if got, _ := listConsentIDs(ctx, e.storage, "ob", ids[len(ids)-1], 0); len(got) != 0 {
		t.Errorf("after the last: %v", got)
	}
	if got, _ := listConsentIDs(ctx, e.storage, "other", "", 0); len(got) != 0 {
		t.Errorf("another config: %v", got)
	}
}

// Removing ids keeps the rest listed in order; an emptied page leaves the
// directory; removing what is not there changes nothing.
func TestConsentIndexRemove(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	ids := indexIDs(2*consentPageMax + 1)
	for _, id := range ids {
		if err := e.b.indexConsent(ctx, e.storage, "ob", id); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(ids)
	d, _ := readConsentDir(ctx, e.storage, "ob")
	pagesBefore := len(d.Pages)
	// Empty the last page entirely, and every other id elsewhere.
	last := d.Pages[len(d.Pages)-1].First
	var kept []string
	for i, id := range ids {
		if id >= last || i%2 == 0 {
			if err := e.b.unindexConsent(ctx, e.storage, "ob", id); err != nil {
				t.Fatal(err)
			}
		} else {
			kept = append(kept, id)
		}
	}
	if err := e.b.unindexConsent(ctx, e.storage, "ob", "never-there"); err != nil {
		t.Fatal(err)
	}
	got, _ := listConsentIDs(ctx, e.storage, "ob", "", 0)
	if !slices.Equal(got, kept) {
		t.Fatalf("after removals: %d ids, want %d", len(got), len(kept))
	}
	d, _ = readConsentDir(ctx, e.storage, "ob")
	if len(d.Pages) != pagesBefore-1 {
		t.Errorf("pages %d -> %d, want the emptied one gone", pagesBefore, len(d.Pages))
	}
	for _, id := range kept {
		_ = e.b.unindexConsent(ctx, e.storage, "ob", id)
	}
	if got, _ := listConsentIDs(ctx, e.storage, "ob", "", 0); len(got) != 0 {
		t.Errorf("after removing all: %v", got)
	}
	if keys, _ := e.storage.List(ctx, consentIndexPrefix+"ob/p/"); len(keys) != 1 {
		t.Errorf("pages left in storage: %v, want only the first", keys)
	}
}

// ConsentIndexEntries (what bankbench writes through sys/raw) is the index
// the plugin's own writes make: lists read it alike, and the plugin adds to
// it.
func TestConsentIndexEntries(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	ids := indexIDs(1234)
	slices.Sort(ids)
	ents, err := ConsentIndexEntries("ob", ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, se := range ents {
		if !strings.HasPrefix(se.Key, consentIndexPrefix+"ob/") {
			t.Fatalf("entry key %s", se.Key)
		}
		if err := e.storage.Put(ctx, se); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.b.indexConsent(ctx, e.storage, "ob", "zz-new"); err != nil {
		t.Fatal(err)
	}
	got, _ := listConsentIDs(ctx, e.storage, "ob", ids[600], 0)
	at, _ := slices.BinarySearch(ids, ids[600])
	if want := append(slices.Clone(ids[at+1:]), "zz-new"); !slices.Equal(got, want) {
		t.Errorf("after %s: %d ids, want %d", ids[600], len(got), len(want))
	}
	if _, err := ConsentIndexEntries("ob", []string{"b", "a"}); err == nil {
		t.Error("unsorted ids accepted")
	}
}

// An id listed without a record (a failure between indexing and storing
// it) leaves the list when it is deleted; a deleted consent leaves it too.
func TestConsentDeleteUnlists(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	for _, id := range []string{"ghost", "kept"} {
		if err := e.b.indexConsent(ctx, e.storage, "ob", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := putConsent(ctx, e.storage, "ob", "kept", &consentRecord{State: consentPending}); err != nil {
		t.Fatal(err)
	}
	if resp, err := e.request(t, logical.DeleteOperation, "consent/ob/ghost", nil); err != nil || resp.IsError() {
		t.Fatalf("delete ghost: %v %v", resp, err)
	}
	got, _ := e.mustOK(t, logical.ListOperation, "consent/ob/", nil).Data["keys"].([]string)
	if !slices.Equal(got, []string{"kept"}) {
		t.Errorf("after deleting the ghost: %v", got)
	}
	e.mustOK(t, logical.DeleteOperation, "consent/ob/kept", nil)
	if resp, err := e.request(t, logical.ListOperation, "consent/ob/", nil); !isNotFound(resp, err) {
		t.Errorf("list after deleting all: %v %v, want 404", resp, err)
	}
}

// Writers of one config's index at once (begins of new consents) lose no
// id: the config's index lock orders them.
func TestConsentIndexConcurrentWriters(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	ids := indexIDs(1600)
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			var err error
			for i := w; i < len(ids) && err == nil; i += 8 {
				err = e.b.indexConsent(ctx, e.storage, "ob", ids[i])
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(ids)
	if got, _ := listConsentIDs(ctx, e.storage, "ob", "", 0); !slices.Equal(got, ids) {
		t.Errorf("listed %d ids, want %d", len(got), len(ids))
	}
}
