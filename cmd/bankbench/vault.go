package main

import (
	"fmt"
	"log"
	"net/http"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// bench holds what every phase shares: the emulator and the HTTP client.
type bench struct {
	o       options
	emu     *emulator.Server
	emuURL  string
	nullSHA string
	client  *http.Client
	rep     *report
}

// startVault starts a Vault server on storage with bankauth registered (and
// the null plugin, when withNull) and logs at warn, so logging costs little.
func (b *bench) startVault(storage string, withNull bool) (*vaulttest.Server, error) {
	return b.startVaultWith(vaulttest.Options{Storage: storage, LogLevel: "warn"}, withNull)
}

// startVaultWith is startVault with the server's options.
func (b *bench) startVaultWith(opts vaulttest.Options, withNull bool) (*vaulttest.Server, error) {
	log.Printf("starting vault (%s storage)", opts.Storage)
	s, err := vaulttest.Start(opts)
	if err != nil {
		return nil, err
	}
	if err := s.RegisterPlugin("bankauth"); err != nil {
		s.Close()
		return nil, err
	}
	if withNull {
		if _, err := s.MustCLI("plugin", "register", "-sha256="+b.nullSHA, "-command="+nullBinary, "secret", "null"); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// configure writes a bankauth config for provider against the emulator.
func (b *bench) configure(s *vaulttest.Server, path, provider string, extra map[string]any) error {
	data := emulator.ConfigData(provider, b.emuURL, emulator.DefaultCredentials())
	for k, v := range extra {
		data[k] = v
	}
	_, err := s.Client.Logical().Write(path, data)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// url is a Vault API URL for path.
func url(s *vaulttest.Server, path string) string { return s.Addr + "/v1/" + path }
