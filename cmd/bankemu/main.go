// Command bankemu serves the bank token-endpoint emulator (package emulator)
// over HTTP or, with -tls, over HTTPS with a freshly generated self-signed
// certificate. Beside the four banks it serves a FAPI 2.0 authorization
// server under /fapi whose user approves at once (see package emulator and
// docs/development.md; the -fapi-* flags). It logs one line per request
// (method, path, provider, status) to stderr and never logs secret values:
// no query string (the authorization endpoint's request_uri), header or
// body.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("bankemu: ")
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		log.Fatal(err)
	}
}

// config is what the flags say.
type config struct {
	listen, caOut string
	useTLS        bool
	opts          emulator.Options
}

// parseFlags reads the command line (errors and -h go to out).
func parseFlags(args []string, out io.Writer) (config, error) {
	def := emulator.DefaultCredentials()
	fs := flag.NewFlagSet("bankemu", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		cfg          config
		c            emulator.Credentials
		f            emulator.FAPIOptions
		redirects    string
		inlineJWKS   string
		ttl, refresh time.Duration
	)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8300", "address to listen on")
	fs.BoolVar(&cfg.useTLS, "tls", false, "serve HTTPS with a freshly generated self-signed certificate for 127.0.0.1/localhost")
	fs.StringVar(&cfg.caOut, "ca-out", "", "with -tls, write the certificate PEM (the clients' trust root) to this file")
	fs.DurationVar(&ttl, "ttl", 60*time.Second, "default access-token lifetime (all providers and the FAPI server)")
	fs.DurationVar(&refresh, "refresh-ttl", 30*time.Minute, "refresh-token lifetime (isbank, etranzact)")
	fs.StringVar(&c.ClientID, "client-id", def.ClientID, "client id (isbank, rakbank, accelerationcloud)")
	fs.StringVar(&c.ClientSecret, "client-secret", def.ClientSecret, "client secret (isbank, rakbank, accelerationcloud)")
	fs.StringVar(&c.ServiceAccountID, "service-account-id", def.ServiceAccountID, "isbank service account id")
	fs.StringVar(&c.ServiceAccountSecret, "service-account-secret", def.ServiceAccountSecret, "isbank service account secret")
	fs.StringVar(&c.Username, "username", def.Username, "etranzact username")
	fs.StringVar(&c.Password, "password", def.Password, "etranzact password")
	fs.StringVar(&f.PublicURL, "fapi-public-url", "", "the emulator's base URL as clients reach it; the FAPI issuer is this + /fapi (default: http(s)://<listen address>, or each request's Host when listening on all interfaces)")
	fs.StringVar(&f.Client.ID, "fapi-client-id", emulator.DefaultFAPIClientID, "the FAPI server's registered client")
	fs.StringVar(&redirects, "fapi-redirect-uris", strings.Join(emulator.DefaultFAPIRedirectURIs, ","), "the client's redirect URIs, comma-separated")
	fs.StringVar(&f.Client.JWKSURI, "fapi-client-jwks-uri", "", "where the client's public keys are, fetched when first needed (e.g. http://127.0.0.1:8200/v1/bankauth/jwks/obsig)")
	fs.StringVar(&inlineJWKS, "fapi-client-jwks", "", "a file holding the client's JWK Set (instead of -fapi-client-jwks-uri)")
	fs.StringVar(&f.User, "fapi-user", emulator.DefaultFAPIUser, "the user who approves every request (the tokens' sub)")
	fs.BoolVar(&f.Deny, "fapi-deny", false, "the user denies every request (access_denied)")
	fs.DurationVar(&f.GrantTTL, "fapi-grant-ttl", emulator.DefaultFAPIGrantTTL, "how long a consent (and its refresh tokens) lives")
	noNonce := fs.Bool("fapi-no-dpop-nonce", false, "do not challenge DPoP proofs for a server nonce")
	fs.BoolVar(&f.NoRefreshRotation, "fapi-no-refresh-rotation", false, "keep a consent's refresh token across refreshes instead of rotating it")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(out, "bankemu: unexpected arguments %q\n", fs.Args())
		return cfg, errors.New("unexpected arguments")
	}
	if inlineJWKS != "" {
		b, err := os.ReadFile(inlineJWKS)
		if err != nil {
			fmt.Fprintf(out, "bankemu: -fapi-client-jwks: %v\n", err)
			return cfg, err
		}
		f.Client.JWKS = b
	}
	for _, u := range strings.Split(redirects, ",") {
		if u = strings.TrimSpace(u); u != "" {
			f.Client.RedirectURIs = append(f.Client.RedirectURIs, u)
		}
	}
	f.NoDPoPNonce = *noNonce
	if err := f.Client.Check(); err != nil {
		fmt.Fprintf(out, "bankemu: the FAPI client: %v\n", err)
		return cfg, err
	}
	cfg.opts = emulator.Options{Credentials: c, TokenTTL: ttl, RefreshTTL: refresh, FAPI: f}
	return cfg, nil
}

// publicURL is the FAPI server's base URL for a listener: the -fapi-public-url
// flag, else the listener's address, else "" (derived from each request)
// when it listens on all interfaces.
func publicURL(flagged, scheme string, addr net.Addr) string {
	if flagged != "" {
		return flagged
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		return ""
	}
	return scheme + "://" + tcp.String()
}

func run(cfg config) error {
	if cfg.caOut != "" && !cfg.useTLS {
		return errors.New("-ca-out needs -tls")
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if cfg.useTLS {
		tlsCfg, certPEM, err := emulator.SelfSignedTLS()
		if err != nil {
			return fmt.Errorf("generating certificate: %w", err)
		}
		if cfg.caOut != "" {
			if err := os.WriteFile(cfg.caOut, certPEM, 0o644); err != nil {
				return err
			}
		}
		srv.TLSConfig, scheme = tlsCfg, "https"
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	cfg.opts.FAPI.PublicURL = publicURL(cfg.opts.FAPI.PublicURL, scheme, ln.Addr())
	srv.Handler = logRequests(emulator.New(cfg.opts))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	log.Printf("listening on %s://%s", scheme, ln.Addr())
	if iss := cfg.opts.FAPI.PublicURL; iss != "" {
		log.Printf("FAPI 2.0 authorization server: issuer %s%s, client %s", strings.TrimSuffix(iss, "/"), emulator.FAPIPrefix, cfg.opts.FAPI.Client.ID)
	} else {
		log.Printf("FAPI 2.0 authorization server: issuer <base URL of each request>%s, client %s", emulator.FAPIPrefix, cfg.opts.FAPI.Client.ID)
	}
	if cfg.useTLS {
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
