package main

import (
	"encoding/json"
	"fmt"
	"log"
	neturl "net/url"
	"strconv"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
	"github.com/hashicorp/vault/api"
)

// consentPageSize is the limit of the timed consent list pages.
const consentPageSize = 100

// consentResult is the consent-scale phase's figures.
type consentResult struct {
	consents, tokens         int
	reloadEmpty, reloadFull  time.Duration // mount time (reload), median, with 0 and with consents stored
	reloadFullAt, reloadBase time.Duration // with consents stored, alternating with a mount holding none
	rssEmpty, rssFull        float64       // plugin RSS after those reloads, none read, MiB
	seed                     time.Duration // writing the consents through sys/raw
	pages                    []pageTiming
	readAll                  time.Duration // reading tokens consents' tokens once
	rssRead, rssSettled      float64       // plugin RSS right after, and scaleSettle later, MiB
	cells                    []readCell    // cached consent-token reads beside the null plugin's
}

// pageTiming is one list page timed over rounds.
type pageTiming struct {
	name, after string
	ids         int
	p50, max    time.Duration
}

// consentTargets are the read cells of the phase: a cached consent token
// beside the null plugin's read with the same lease behaviour.
var consentTargets = []target{
	{"null, lease", "null-lease/token/t", true},
	{"consent token, lease", "cs/token/ob/" + consentID(1), true},
	{"null, no lease", "null-nolease/token/t", false},
	{"consent token, no lease", "cs/token/obnl/" + consentID(0), false},
}

// consentPhase stores consents on one config of a mount alone on its own
// Vault and measures mounting, RSS, list pages and cached token reads.
func (b *bench) consentPhase() error {
	s, err := b.startVaultWith(vaulttest.Options{Storage: b.o.consentStorage, LogLevel: "warn", RawStorage: true}, true)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := b.setupConsentMount(s); err != nil {
		return err
	}
	res := &consentResult{consents: b.o.consents, tokens: min(b.o.consentTokens, b.o.consents)}
	if res.reloadEmpty, res.rssEmpty, err = b.reloadMedian(s, "cs/"); err != nil {
		return err
	}
	log.Printf("consent: 0 stored: mount %v, rss %.1f MiB", res.reloadEmpty, res.rssEmpty)
	uuid, err := mountUUID(s, "cs")
	if err != nil {
		return err
	}
	log.Printf("consent: writing %d consents through sys/raw", res.consents)
	t0 := time.Now()
	if err := b.seedConsents(s, uuid, "ob", res.consents); err != nil {
		return err
	}
	if err := b.seedConsents(s, uuid, "obnl", 1); err != nil {
		return err
	}
	res.seed = time.Since(t0)
	log.Printf("consent: wrote %d consents in %v", res.consents, res.seed.Round(time.Second))
	if res.reloadFull, res.rssFull, err = b.reloadMedian(s, "cs/"); err != nil {
		return err
	}
	log.Printf("consent: %d stored: mount %v, rss %.1f MiB", res.consents, res.reloadFull, res.rssFull)
	if res.reloadFullAt, res.reloadBase, err = b.reloadSideBySide(s, "cs/", "cs0/"); err != nil {
		return err
	}
	log.Printf("consent: side by side: mount %v with %d stored, %v with none", res.reloadFullAt, res.consents, res.reloadBase)
	n := res.consents
	for _, p := range []struct {
		name  string
		after string
	}{{"first", ""}, {"middle", consentID(n / 2)}, {"last", consentID(max(n-consentPageSize-1, 0))}} {
		pt, err := b.timePage(s, p.name, p.after)
		if err != nil {
			return err
		}
		log.Printf("consent: %s page (after %q): %d ids, p50 %v, max %v", p.name, p.after, pt.ids, pt.p50, pt.max)
		res.pages = append(res.pages, pt)
	}
	if err := b.readConsentTokens(s, res); err != nil {
		return err
	}
	if res.cells, err = b.consentReadCells(s); err != nil {
		return err
	}
	b.rep.consent = res
	return nil
}

// setupConsentMount mounts bankauth at cs/ with two authorization_code
// configs against the emulator's FAPI 2.0 authorization server (ob with
// leases, obnl without), and the null plugin with and without leases.
func (b *bench) setupConsentMount(s *vaulttest.Server) error {
	cmds := [][]string{
		{"secrets", "enable", "-path=null-lease", "-options=lease=true", "null"},
		{"secrets", "enable", "-path=null-nolease", "-options=lease=false", "null"},
	}
	for _, c := range cmds {
		if _, err := s.MustCLI(c...); err != nil {
			return err
		}
	}
	// cs0 is the same mount that never holds a consent: mount times are
	// also measured alternating with it.
	for _, m := range []string{"cs", "cs0"} {
		if err := b.setupConsentConfigs(s, m); err != nil {
			return err
		}
	}
	return nil
}

// setupConsentConfigs mounts bankauth at mount with its keys and configs.
func (b *bench) setupConsentConfigs(s *vaulttest.Server, mount string) error {
	if err := s.Mount("bankauth", mount); err != nil {
		return err
	}
	issuer := b.emuURL + emulator.FAPIPrefix
	cmds := [][]string{
		{"write", mount + "/key/obsig", "type=ec-p256", "purpose=client_auth", "allowed_endpoints=" + b.emuURL + "/", "allowed_audiences=" + issuer},
		{"write", mount + "/key/obdpop", "type=ec-p256", "purpose=dpop"},
	}
	for _, c := range []string{"ob", "obnl"} {
		cmds = append(cmds, []string{"write", mount + "/config/" + c, "provider=oauth2", "grant_type=authorization_code", "issuer=" + issuer,
			"client_id=" + emulator.DefaultFAPIClientID, "auth_method=private_key_jwt", "signing_key=obsig", "dpop_key=obdpop",
			"redirect_uris=" + emulator.DefaultFAPIRedirectURIs[1], "scope=openid accounts offline_access", "fapi=2.0",
			"lease=" + strconv.FormatBool(c == "ob")})
	}
	for _, c := range cmds {
		if _, err := s.MustCLI(c...); err != nil {
			return err
		}
	}
	return nil
}

// reloadMedian reloads the mount's plugin rounds times (Vault sets the
// backend up anew) and answers the median time and the plugin's RSS after
// the last, with nothing read.
func (b *bench) reloadMedian(s *vaulttest.Server, mount string) (time.Duration, float64, error) {
	var ds []time.Duration
	for range max(b.o.rounds, 1) {
		t0 := time.Now()
		if _, err := s.Client.Sys().ReloadPlugin(&api.ReloadPluginInput{Mounts: []string{mount}}); err != nil {
			return 0, 0, fmt.Errorf("reload: %w", err)
		}
		ds = append(ds, time.Since(t0))
	}
	pid, err := pluginPID(s.PID(), vaulttest.PluginBinary)
	if err != nil {
		return 0, 0, err
	}
	rss, err := rssMiB(pid)
	return percentile(ds, 50), rss, err
}

// reloadSideBySide reloads mount a and mount base alternately, rounds
// times each, the order rotating each round, and answers the median of each
// mount's reloads that started a new plugin process. (Vault 1.21 starts a
// new process for the first of two reloads in quick succession and mounts
// the second on it: those take a fifth of the time and are not compared.)
func (b *bench) reloadSideBySide(s *vaulttest.Server, a, base string) (time.Duration, time.Duration, error) {
	var da, db []time.Duration
	pid, _ := pluginPID(s.PID(), vaulttest.PluginBinary)
	for r := range max(b.o.rounds, 2) {
		for k := range 2 {
			m, into := a, &da
			if (r+k)%2 == 1 {
				m, into = base, &db
			}
			t0 := time.Now()
			if _, err := s.Client.Sys().ReloadPlugin(&api.ReloadPluginInput{Mounts: []string{m}}); err != nil {
				return 0, 0, fmt.Errorf("reload %s: %w", m, err)
			}
			d := time.Since(t0)
			now, err := pluginPID(s.PID(), vaulttest.PluginBinary)
			if err != nil {
				return 0, 0, err
			}
			if now != pid {
				*into = append(*into, d)
			}
			pid = now
		}
	}
	if len(da) == 0 || len(db) == 0 {
		return 0, 0, fmt.Errorf("no reload of %s or %s started a plugin process", a, base)
	}
	return percentile(da, 50), percentile(db, 50), nil
}

// timePage lists one page of consent ids after after, rounds times (at
// least 5), and checks it holds the ids that follow after.
func (b *bench) timePage(s *vaulttest.Server, name, after string) (pageTiming, error) {
	pt := pageTiming{name: name, after: after}
	q := neturl.Values{"list": {"true"}, "limit": {strconv.Itoa(consentPageSize)}}
	if after != "" {
		q.Set("after", after)
	}
	u := url(s, "cs/consent/ob") + "?" + q.Encode()
	var ds []time.Duration
	for range max(b.o.rounds, 5) {
		t0 := time.Now()
		body, err := get(b.client, u, s.RootToken)
		if err != nil {
			return pt, err
		}
		ds = append(ds, time.Since(t0))
		var out struct {
			Data struct {
				Keys []string `json:"keys"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return pt, err
		}
		pt.ids = len(out.Data.Keys)
		if pt.ids == 0 || out.Data.Keys[0] <= after {
			return pt, fmt.Errorf("list after %q: %d ids starting %q", after, pt.ids, out.Data.Keys)
		}
	}
	pt.p50, pt.max = percentile(ds, 50), percentile(ds, 100)
	return pt, nil
}

// readConsentTokens reads the first tokens consents' tokens once (32
// readers; each loads its consent from storage and caches the token), then
// measures the plugin's RSS, and again scaleSettle later.
func (b *bench) readConsentTokens(s *vaulttest.Server, res *consentResult) error {
	log.Printf("consent: reading %d consent tokens once", res.tokens)
	t0 := time.Now()
	err := parallel(0, res.tokens, 32, func(i int) error {
		body, err := get(b.client, url(s, "cs/token/ob/"+consentID(i)), s.RootToken)
		if err != nil {
			return err
		}
		sec, err := parseSecret(body)
		if err == nil && sec.Data.AccessToken == "" {
			err = fmt.Errorf("token/ob/%s: no access_token", consentID(i))
		}
		return err
	})
	if err != nil {
		return err
	}
	res.readAll = time.Since(t0)
	pid, err := pluginPID(s.PID(), vaulttest.PluginBinary)
	if err != nil {
		return err
	}
	if res.rssRead, err = rssMiB(pid); err != nil {
		return err
	}
	log.Printf("consent: %d tokens read in %v: rss %.1f MiB", res.tokens, res.readAll.Round(time.Millisecond), res.rssRead)
	if b.o.scaleSettle > 0 {
		log.Printf("consent: waiting %v for the plugin's memory to settle", b.o.scaleSettle)
		time.Sleep(b.o.scaleSettle)
		if res.rssSettled, err = rssMiB(pid); err != nil {
			return err
		}
	}
	return nil
}

// consentReadCells measures cached consent-token reads beside the null
// plugin's, as the read phase does: every concurrency, rounds rotating the
// order of the targets.
func (b *bench) consentReadCells(s *vaulttest.Server) ([]readCell, error) {
	// Each target must answer, with a lease exactly where one is expected.
	for _, t := range consentTargets {
		body, err := get(b.client, url(s, t.path), s.RootToken)
		if err != nil {
			return nil, err
		}
		sec, err := parseSecret(body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.path, err)
		}
		if hasLease := sec.LeaseID != "" && sec.LeaseDuration > 0; hasLease != t.lease {
			return nil, fmt.Errorf("%s: lease_id %q lease_duration %d, want lease=%t", t.path, sec.LeaseID, sec.LeaseDuration, t.lease)
		}
		closedLoop(b.client, url(s, t.path), s.RootToken, 8, b.o.cell/3)
	}
	var cells []readCell
	for _, conc := range b.o.concurrency {
		acc := make([]loadResult, len(consentTargets))
		for r := 0; r < b.o.rounds; r++ {
			for k := range consentTargets {
				i := (k + r) % len(consentTargets)
				res := closedLoop(b.client, url(s, consentTargets[i].path), s.RootToken, conc, b.o.cell)
				acc[i].add(res)
			}
		}
		for i, t := range consentTargets {
			a := acc[i]
			if a.errors > 0 {
				return nil, fmt.Errorf("%s: %d errors: %v", t.path, a.errors, a.firstErr)
			}
			cells = append(cells, readCell{target: t, conc: conc, perSec: a.perSecond(),
				p50: percentile(a.latencies, 50), p99: percentile(a.latencies, 99), reads: a.reads})
			log.Printf("consent: c=%d %-24s %8.0f reads/s p99 %v", conc, t.name, a.perSecond(), percentile(a.latencies, 99))
		}
	}
	return cells, nil
}
