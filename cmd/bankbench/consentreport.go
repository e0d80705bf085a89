package main

import (
	"fmt"
	"io"
	"time"
)

// Issue 19's scale goals.
const (
	goalConsentPage     = 100 * time.Millisecond // each page of the consent list
	goalConsentRSSMiB   = 200.0                  // settled, with goalConsentTokens tokens cached
	goalConsentReadRate = 1.0                    // cached consent-token reads/s >= the null plugin's
)

// printConsent prints the consent phase's section and answers its goals.
func (r *report) printConsent(w io.Writer) []goalLine {
	c := r.consent
	if c == nil {
		return nil
	}
	var goals []goalLine
	fmt.Fprintf(w, "## 5. Consents (%s storage, one mount on its own Vault)\n\n", r.o.consentStorage)
	fmt.Fprintf(w, "%d authorized consents of one config, written through `sys/raw` in the plugin's storage format (%.0f s), "+
		"with their sorted index. Mount time is the median of %d `sys/plugins/reload/backend` of the mount; RSS is the "+
		"plugin process's VmRSS after them, no consent read.\n\n", c.consents, c.seed.Seconds(), max(r.o.rounds, 1))
	fmt.Fprintf(w, "| consents stored | mount (reload) ms | RSS none read MiB |\n|---:|---:|---:|\n")
	fmt.Fprintf(w, "| 0 | %s | %.1f |\n| %d | %s | %.1f |\n\n", ms(c.reloadEmpty), c.rssEmpty, c.consents, ms(c.reloadFull), c.rssFull)
	fmt.Fprintf(w, "Side by side (reloads alternating, %d each, order rotating; median of those that started the plugin process): "+
		"mount with %d consents %s ms, the same mount holding none (`cs0`) %s ms.\n\n", max(r.o.rounds, 2), c.consents, ms(c.reloadFullAt), ms(c.reloadBase))
	mr, rr := ratio(float64(c.reloadFullAt), float64(c.reloadBase)), ratio(c.rssFull, c.rssEmpty)
	goals = append(goals,
		goalLine{fmt.Sprintf("mount time with %d consents within 10%% of none (side by side)", c.consents), fmt.Sprintf("%.2fx", mr), mr <= goalScaleRatio},
		goalLine{fmt.Sprintf("plugin RSS with %d consents (none read) within 10%% of none", c.consents), fmt.Sprintf("%.2fx", rr), rr <= goalScaleRatio})

	fmt.Fprintf(w, "`vault list cs/consent/ob limit=%d` over HTTP, %d times each:\n\n", consentPageSize, max(r.o.rounds, 5))
	fmt.Fprintf(w, "| page | after | ids | p50 ms | max ms |\n|---|---|---:|---:|---:|\n")
	var worst time.Duration
	for _, p := range c.pages {
		fmt.Fprintf(w, "| %s | %q | %d | %s | %s |\n", p.name, p.after, p.ids, ms(p.p50), ms(p.max))
		worst = max(worst, p.max)
	}
	fmt.Fprintln(w)
	goals = append(goals, goalLine{fmt.Sprintf("each consent list page under 100 ms with %d consents", c.consents),
		fmt.Sprintf("slowest %s ms", ms(worst)), worst < goalConsentPage})

	fmt.Fprintf(w, "%d consents' tokens read once (32 readers; each loads its consent from storage): %.1f s. "+
		"Plugin RSS right after: %.1f MiB", c.tokens, c.readAll.Seconds(), c.rssRead)
	if c.rssSettled > 0 {
		fmt.Fprintf(w, "; %v later: %.1f MiB", r.o.scaleSettle, c.rssSettled)
	}
	fmt.Fprintf(w, ".\n\n")
	if c.rssSettled > 0 {
		goals = append(goals, goalLine{fmt.Sprintf("plugin RSS with %d consent tokens cached < %.0f MiB (settled)", c.tokens, goalConsentRSSMiB),
			fmt.Sprintf("%.1f MiB", c.rssSettled), c.rssSettled < goalConsentRSSMiB})
	}
	goals = append(goals, goalLine{fmt.Sprintf("plugin RSS with %d consent tokens cached < %.0f MiB (right after)", c.tokens, goalConsentRSSMiB),
		fmt.Sprintf("%.1f MiB", c.rssRead), c.rssRead < goalConsentRSSMiB})

	fmt.Fprintf(w, "Cached consent-token reads (`token/<config>/<id>`, one of the cached consents) beside the null plugin, "+
		"%d rounds of %v per cell, order rotating:\n\n", r.o.rounds, r.o.cell)
	fmt.Fprintf(w, "| target | c | reads/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n")
	for _, cell := range c.cells {
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s |\n", cell.target.name, cell.conc, cell.perSec, ms(cell.p50), ms(cell.p99))
	}
	fmt.Fprintln(w)
	for _, conc := range r.o.concurrency {
		for _, pair := range [][2]string{{"consent token, lease", "null, lease"}, {"consent token, no lease", "null, no lease"}} {
			a, n := findCell(c.cells, pair[0], conc), findCell(c.cells, pair[1], conc)
			q := ratio(a.perSec, n.perSec)
			goals = append(goals, goalLine{fmt.Sprintf("%s reads/s >= null plugin's at c=%d", pair[0], conc),
				fmt.Sprintf("%.0f vs %.0f (%.2fx)", a.perSec, n.perSec, q), q >= goalConsentReadRate})
		}
	}
	return goals
}
