// Command vault-plugin-secrets-null is a minimal external secrets engine,
// kept only as the floor for bankauth's benchmarks (cmd/bankbench): it
// answers reads of token/<name> with one constant token held in memory, in
// the same shape as bankauth (access_token, token_type, expires_in,
// expires_at, scope), with a non-renewable lease or, when the mount option
// lease=false is set, without one. Whatever an external plugin costs Vault
// per read, this costs too; anything bankauth costs on top is its own.
//
//	vault secrets enable -path=null -options=lease=false null
//
// Mount options: lease (default true), ttl (token lifetime, default 1h).
package main

import (
	"os"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"
)

func main() {
	apiClientMeta := &api.PluginAPIClientMeta{}
	flags := apiClientMeta.FlagSet()
	if err := flags.Parse(os.Args[1:]); err != nil {
		fatal(err)
	}
	err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(apiClientMeta.GetTLSConfig()),
	})
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
	os.Exit(1)
}
