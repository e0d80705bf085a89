package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// newHTTPClient keeps enough idle connections for every concurrent reader.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        2048,
		MaxIdleConnsPerHost: 2048,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}, Timeout: 2 * time.Minute}
}

// get reads one Vault path over HTTP and returns the body; a status other
// than 200 is an error.
func get(c *http.Client, url, token string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, body)
	}
	return body, nil
}

// vaultSecret is the part of a Vault read response the harness looks at.
type vaultSecret struct {
	LeaseID       string `json:"lease_id"`
	LeaseDuration int    `json:"lease_duration"`
	Data          struct {
		AccessToken string `json:"access_token"`
		ExpiresAt   string `json:"expires_at"`
		ExpiresIn   int64  `json:"expires_in"`
	} `json:"data"`
}

func parseSecret(body []byte) (vaultSecret, error) {
	var s vaultSecret
	err := json.Unmarshal(body, &s)
	return s, err
}

// loadResult is what one closed-loop run measured.
type loadResult struct {
	reads     int
	errors    int
	elapsed   time.Duration
	latencies []time.Duration
	firstErr  error
}

func (r *loadResult) add(o loadResult) {
	r.reads += o.reads
	r.errors += o.errors
	r.elapsed += o.elapsed
	r.latencies = append(r.latencies, o.latencies...)
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
}

func (r loadResult) perSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.reads) / r.elapsed.Seconds()
}

// closedLoop runs conc readers of url back to back for d and records every
// read's latency.
func closedLoop(c *http.Client, url, token string, conc int, d time.Duration) loadResult {
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out loadResult
	)
	start := time.Now()
	end := start.Add(d)
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine loadResult
			mine.latencies = make([]time.Duration, 0, 4096)
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				_, err := get(c, url, token)
				lat := time.Since(t0)
				if err != nil {
					mine.errors++
					if mine.firstErr == nil {
						mine.firstErr = err
					}
					continue
				}
				mine.reads++
				mine.latencies = append(mine.latencies, lat)
			}
			mu.Lock()
			out.reads += mine.reads
			out.errors += mine.errors
			out.latencies = append(out.latencies, mine.latencies...)
			if out.firstErr == nil {
				out.firstErr = mine.firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}
