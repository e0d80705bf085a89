// Command bankemu serves the bank token-endpoint emulator (package emulator)
// over HTTP or, with -tls, over HTTPS with a freshly generated self-signed
// certificate. It logs one line per request (method, path, provider, status)
// to stderr and never logs secret values.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

func main() {
	def := emulator.DefaultCredentials()
	var (
		listen     = flag.String("listen", "127.0.0.1:8300", "address to listen on")
		useTLS     = flag.Bool("tls", false, "serve HTTPS with a freshly generated self-signed certificate for 127.0.0.1/localhost")
		caOut      = flag.String("ca-out", "", "with -tls, write the certificate PEM (the clients' trust root) to this file")
		ttl        = flag.Duration("ttl", 60*time.Second, "default access-token lifetime")
		refreshTTL = flag.Duration("refresh-ttl", 30*time.Minute, "refresh-token lifetime (isbank, etranzact)")
		c          emulator.Credentials
	)
	flag.StringVar(&c.ClientID, "client-id", def.ClientID, "client id (isbank, rakbank, accelerationcloud)")
	flag.StringVar(&c.ClientSecret, "client-secret", def.ClientSecret, "client secret (isbank, rakbank, accelerationcloud)")
	flag.StringVar(&c.ServiceAccountID, "service-account-id", def.ServiceAccountID, "isbank service account id")
	flag.StringVar(&c.ServiceAccountSecret, "service-account-secret", def.ServiceAccountSecret, "isbank service account secret")
	flag.StringVar(&c.Username, "username", def.Username, "etranzact username")
	flag.StringVar(&c.Password, "password", def.Password, "etranzact password")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("bankemu: ")
	if err := run(*listen, *useTLS, *caOut, emulator.Options{Credentials: c, TokenTTL: *ttl, RefreshTTL: *refreshTTL}); err != nil {
		log.Fatal(err)
	}
}

func run(listen string, useTLS bool, caOut string, opts emulator.Options) error {
	if caOut != "" && !useTLS {
		return errors.New("-ca-out needs -tls")
	}
	srv := &http.Server{Handler: logRequests(emulator.New(opts)), ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if useTLS {
		cfg, certPEM, err := emulator.SelfSignedTLS()
		if err != nil {
			return fmt.Errorf("generating certificate: %w", err)
		}
		if caOut != "" {
			if err := os.WriteFile(caOut, certPEM, 0o644); err != nil {
				return err
			}
		}
		srv.TLSConfig, scheme = cfg, "https"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	log.Printf("listening on %s://%s", scheme, ln.Addr())
	if useTLS {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// logRequests logs method, path (never the query or headers), provider and status.
func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		provider := emulator.ProviderForPath(r.URL.Path)
		if provider == "" {
			provider = "-"
		}
		status := fmt.Sprint(rec.status)
		if rec.status == 0 {
			status = "none (client gone)"
		}
		log.Printf("%s %s provider=%s status=%s", r.Method, r.URL.Path, provider, status)
	})
}
