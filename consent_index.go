package bankauth

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/hashicorp/vault/sdk/logical"
)

// The consent index lists a config's consent ids in sorted pages, so that a
// page of `vault list consent/<config>` touches a bounded part of storage.
//
// Why not List: logical.Storage (SDK v0.25.1) has only List(prefix), which
// answers every key under the prefix; Vault's inmem and raft backends also
// walk every key below the prefix (sub-folders included) to answer it. So
// neither listing consent/<config>/ nor sharding the records into
// consent/<config>/<first chars>/<id> folders bounds a page: listing the
// shards still walks all records, and ids sharing a prefix (user-000001 …)
// all land in one shard.
//
// Layout, beside the records at consentKey(config, id):
//
//	consent-index/<config>/dir    consentDir: each page's lowest id, in order
//	consent-index/<config>/p/<n>  consentPage: up to consentPageMax sorted ids
//
// A list reads the directory and the pages it needs: for 1,000,000 ids a
// directory of 1,000-2,000 entries and one or two pages. Only the active
// node writes the index (consent writes and deletes are forwarded), under
// the config's index lock. An id is indexed before its record is first
// written and unindexed after its record is deleted, so a failure between
// the two leaves at worst a listed id that reads 404, which a delete of it
// removes.
//
// The directory takes about 30 bytes a page for ids of a dozen characters,
// and pages hold 500 to 1,000 ids: 1,000,000 consents make a directory of
// 30-60 KB, and raft's default max_entry_size (1 MiB) would be reached
// somewhere past 15,000,000 consents of one config.
const consentIndexPrefix = "consent-index/"

// consentPageMax is the most ids a page holds: a fuller page splits in two.
const consentPageMax = 1000

// consentDir is a config's page directory, sorted by First; the first
// page's First is "".
type consentDir struct {
	Pages []consentDirPage `json:"pages"`
	Next  int              `json:"next"` // the number of the next new page
}

// consentDirPage is one page: it holds the ids from First up to the next
// page's First.
type consentDirPage struct {
	First string `json:"first"`
	N     int    `json:"n"`
}

type consentPage struct {
	IDs []string `json:"ids"`
}

func consentDirKey(config string) string { return consentIndexPrefix + config + "/dir" }

func consentPageKey(config string, n int) string {
	return consentIndexPrefix + config + "/p/" + strconv.Itoa(n)
}

// pageFor is the index in d.Pages of the page that holds (or would hold)
// id: the last whose First is at most id.
func (d *consentDir) pageFor(id string) int {
	return max(sort.Search(len(d.Pages), func(i int) bool { return d.Pages[i].First > id })-1, 0)
}

// consentIndexLocks order the index writes of each config on this node.
type consentIndexLocks struct {
	consentLocks
}

func (l *consentIndexLocks) lockConfig(config string) func() { return l.lock(config, "") }

func readConsentDir(ctx context.Context, s logical.Storage, config string) (*consentDir, error) {
	se, err := s.Get(ctx, consentDirKey(config))
	if err != nil || se == nil {
		return nil, err
	}
	var d consentDir
	if err := se.DecodeJSON(&d); err != nil {
		return nil, fmt.Errorf("decoding consent index of %s: %w", config, err)
	}
	if len(d.Pages) == 0 {
		return nil, nil
	}
	return &d, nil
}

func readConsentPage(ctx context.Context, s logical.Storage, config string, n int) ([]string, error) {
	se, err := s.Get(ctx, consentPageKey(config, n))
	if err != nil || se == nil {
		return nil, err
	}
	var p consentPage
	if err := se.DecodeJSON(&p); err != nil {
		return nil, fmt.Errorf("decoding consent index page %d of %s: %w", n, config, err)
	}
	return p.IDs, nil
}

func putJSON(ctx context.Context, s logical.Storage, key string, v any) error {
	se, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return err
	}
	return s.Put(ctx, se)
}

// indexConsent adds id to config's index (nothing if it is there).
func (b *backend) indexConsent(ctx context.Context, s logical.Storage, config, id string) error {
	defer b.consentIndex.lockConfig(config)()
	d, err := readConsentDir(ctx, s, config)
	if err != nil {
		return err
	}
	newDir := d == nil
	if newDir {
		d = &consentDir{Pages: []consentDirPage{{First: "", N: 0}}, Next: 1}
	}
	pi := d.pageFor(id)
	ids, err := readConsentPage(ctx, s, config, d.Pages[pi].N)
	if err != nil {
		return err
	}
	at, found := slices.BinarySearch(ids, id)
	if found {
		return nil
	}
	ids = slices.Insert(ids, at, id)
	if len(ids) <= consentPageMax {
		if err := putJSON(ctx, s, consentPageKey(config, d.Pages[pi].N), consentPage{IDs: ids}); err != nil || !newDir {
			return err
		}
		return putJSON(ctx, s, consentDirKey(config), d)
	}
	// Split: the upper half goes to a new page, written before the
	// directory names it and before the lower half leaves the old page.
	half := len(ids) / 2
	upper := consentDirPage{First: ids[half], N: d.Next}
	d.Next++
	if err := putJSON(ctx, s, consentPageKey(config, upper.N), consentPage{IDs: ids[half:]}); err != nil {
		return err
	}
	d.Pages = slices.Insert(d.Pages, pi+1, upper)
	if err := putJSON(ctx, s, consentDirKey(config), d); err != nil {
		return err
	}
	return putJSON(ctx, s, consentPageKey(config, d.Pages[pi].N), consentPage{IDs: ids[:half:half]})
}

// unindexConsent removes id from config's index (nothing if it is not
// there). A page left empty leaves the directory, unless it is the first.
func (b *backend) unindexConsent(ctx context.Context, s logical.Storage, config, id string) error {
	defer b.consentIndex.lockConfig(config)()
	d, err := readConsentDir(ctx, s, config)
	if err != nil || d == nil {
		return err
	}
	pi := d.pageFor(id)
	n := d.Pages[pi].N
	ids, err := readConsentPage(ctx, s, config, n)
	if err != nil {
		return err
	}
	at, found := slices.BinarySearch(ids, id)
	if !found {
		return nil
	}
	ids = slices.Delete(ids, at, at+1)
	if len(ids) > 0 || pi == 0 {
		return putJSON(ctx, s, consentPageKey(config, n), consentPage{IDs: ids})
	}
	d.Pages = slices.Delete(d.Pages, pi, pi+1)
	if err := putJSON(ctx, s, consentDirKey(config), d); err != nil {
		return err
	}
	return s.Delete(ctx, consentPageKey(config, n))
}

// listConsentIDs answers up to limit ids of config after after (exclusive)
// in sorted order; limit 0 means all. It reads the directory and only the
// pages the answer comes from.
func listConsentIDs(ctx context.Context, s logical.Storage, config, after string, limit int) ([]string, error) {
	d, err := readConsentDir(ctx, s, config)
	if err != nil || d == nil {
		return nil, err
	}
	var out []string
	start := 0
	if after != "" {
		start = d.pageFor(after)
	}
	for _, p := range d.Pages[start:] {
		ids, err := readConsentPage(ctx, s, config, p.N)
		if err != nil {
			return nil, err
		}
		if after != "" {
			at, found := slices.BinarySearch(ids, after)
			if found {
				at++
			}
			ids = ids[at:]
		}
		if limit > 0 && len(out)+len(ids) >= limit {
			return append(out, ids[:limit-len(out)]...), nil
		}
		out = append(out, ids...)
	}
	return out, nil
}

// ConsentIndexEntries are the storage entries of a config's consent index
// holding exactly ids (sorted, no duplicates), in pages half full as splits
// leave them. Tools that write a mount's storage directly (bankbench seeds
// consents through Vault's sys/raw) write these beside the records.
func ConsentIndexEntries(config string, ids []string) ([]*logical.StorageEntry, error) {
	if !slices.IsSorted(ids) {
		return nil, fmt.Errorf("consent ids are not sorted")
	}
	d := consentDir{Pages: []consentDirPage{}}
	var out []*logical.StorageEntry
	per := consentPageMax / 2
	for i := 0; i == 0 || i < len(ids); i += per {
		page := ids[i:min(i+per, len(ids))]
		first := ""
		if i > 0 {
			first = page[0]
		}
		d.Pages = append(d.Pages, consentDirPage{First: first, N: d.Next})
		se, err := logical.StorageEntryJSON(consentPageKey(config, d.Next), consentPage{IDs: page})
		if err != nil {
			return nil, err
		}
		out = append(out, se)
		d.Next++
	}
	se, err := logical.StorageEntryJSON(consentDirKey(config), d)
	if err != nil {
		return nil, err
	}
	return append(out, se), nil
}
