package bankauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// profilePrefix is where operators' profiles are stored.
const profilePrefix = "profile/"

const fieldProfile = "profile"

// storedProfile is a profile as stored: the document as the operator wrote
// it (its key order is the order fields are sent in).
type storedProfile struct {
	Document string `json:"document"`
}

func pathProfile(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "profile/" + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "bankauth",
				OperationSuffix: "profile",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {Type: framework.TypeNameString, Required: true,
					Description: "Name of the profile; configs use it as provider=<name>."},
				fieldProfile: {Type: framework.TypeString, Required: true,
					Description: "The profile document (JSON). Send it as a string (vault write ... profile=@file.json) to keep the order of body fields."},
			},
			ExistenceCheck: b.profileExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: &framework.PathOperation{Callback: b.profileWrite,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "write"}},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.profileWrite,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "write"}},
				logical.ReadOperation: &framework.PathOperation{Callback: b.profileRead,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"}},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.profileDelete,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "delete"}},
			},
			HelpSynopsis:    pathProfileHelpSyn,
			HelpDescription: pathProfileHelpDesc,
		},
		{
			Pattern: "profile/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "bankauth",
				OperationSuffix: "profiles",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.profileList,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "list"}},
			},
			HelpSynopsis:    pathProfileListHelpSyn,
			HelpDescription: pathProfileListHelpDesc,
		},
	}
}

// readProfile reads a stored profile; nil if there is none.
func readProfile(ctx context.Context, s logical.Storage, name string) (*bank.Profile, string, error) {
	se, err := s.Get(ctx, profilePrefix+name)
	if err != nil || se == nil {
		return nil, "", err
	}
	var sp storedProfile
	if err := se.DecodeJSON(&sp); err != nil {
		return nil, "", fmt.Errorf("decoding profile %q: %w", name, err)
	}
	p, err := bank.ParseProfile([]byte(sp.Document))
	if err != nil {
		return nil, "", fmt.Errorf("stored profile %q is invalid: %w", name, err)
	}
	return p, sp.Document, nil
}

func (b *backend) profileExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	se, err := req.Storage.Get(ctx, profilePrefix+d.Get("name").(string))
	return se != nil, err
}

// profileWrite validates and stores a profile. When configs already use it,
// each must still be valid under the new profile; their tokens are dropped,
// since they were obtained by the old protocol.
func (b *backend) profileWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if _, builtin := bank.Lookup(name); builtin {
		return logical.ErrorResponse("invalid name: %q is a built-in provider; choose another name", name), nil
	}
	doc := strings.TrimSpace(d.Get(fieldProfile).(string))
	if doc == "" {
		return logical.ErrorResponse("invalid profile: is required (a JSON document, e.g. profile=@bank.json)"), nil
	}
	p, err := bank.ParseProfile([]byte(doc))
	if err != nil {
		return logical.ErrorResponse("invalid profile: %s", err.Error()), nil
	}
	prov, err := bank.NewProfileProvider(name, p)
	if err != nil {
		return logical.ErrorResponse("invalid profile: %s", err.Error()), nil
	}

	b.profileLock.Lock()
	defer b.profileLock.Unlock()
	users, err := b.configsUsing(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(users))
	for _, u := range users {
		names = append(names, u.name)
	}
	if resp, err := profileRedirects(ctx, req.Storage, name, p, names); resp != nil || err != nil { // config_resend.go
		return resp, err
	}
	for _, u := range users {
		u.cfg.UseProvider(prov)
		if err := u.cfg.Validate(); err != nil {
			var fe *bank.FieldError
			if errors.As(err, &fe) {
				return logical.ErrorResponse("invalid profile: config %q, which uses it, would be invalid: %s: %s", u.name, fe.Field, fe.Message), nil
			}
			return nil, err
		}
	}
	se, err := logical.StorageEntryJSON(profilePrefix+name, storedProfile{Document: doc})
	if err != nil {
		return nil, err
	}
	// Whatever happens from here, no config using the profile is served
	// from memory under the old profile.
	defer func() {
		for _, u := range users {
			b.broker.Forget(u.name)
		}
	}()
	if err := req.Storage.Put(ctx, se); err != nil {
		return nil, err
	}
	for _, u := range users {
		if err := b.dropToken(ctx, req.Storage, u.name); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func (b *backend) profileRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	var doc string
	builtin := false
	if _, ok := bank.Lookup(name); ok {
		p, err := bank.BuiltinProfile(name)
		if err != nil {
			return logical.ErrorResponse("%s is a built-in provider written in Go, not a profile; see docs/providers/", name), nil
		}
		enc, _ := json.Marshal(p)
		doc, builtin = string(enc), true
	} else {
		p, stored, err := readProfile(ctx, req.Storage, name)
		if err != nil || p == nil {
			return nil, err
		}
		doc = stored
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(doc), &obj); err != nil {
		return nil, err
	}
	users, err := b.configsUsing(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(users))
	for _, u := range users {
		names = append(names, u.name)
	}
	return &logical.Response{Data: map[string]any{
		fieldProfile: obj,
		"built_in":   builtin,
		"used_by":    names,
	}}, nil
}

// profileDelete removes a profile no config uses.
func (b *backend) profileDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if _, builtin := bank.Lookup(name); builtin {
		return logical.ErrorResponse("%q is a built-in provider and cannot be deleted", name), nil
	}
	b.profileLock.Lock()
	defer b.profileLock.Unlock()
	users, err := b.configsUsing(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if len(users) > 0 {
		names := make([]string, 0, len(users))
		for _, u := range users {
			names = append(names, u.name)
		}
		return logical.ErrorResponse("profile %q is in use by config %s; delete those configs or change their provider first",
			name, strings.Join(names, ", ")), nil
	}
	return nil, req.Storage.Delete(ctx, profilePrefix+name)
}

// profileList lists the stored profiles and the built-in ones (oauth2 is
// built in but written in Go, not a profile).
func (b *backend) profileList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, profilePrefix)
	if err != nil {
		return nil, err
	}
	for _, n := range bank.Names() {
		if _, err := bank.BuiltinProfile(n); err == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return logical.ListResponse(names), nil
}

// configUser is a config that uses a profile.
type configUser struct {
	name string
	cfg  *bank.Config
}

// configsUsing lists the configs whose provider is profile. It reads every
// config: profile writes and deletes are rare.
func (b *backend) configsUsing(ctx context.Context, s logical.Storage, profile string) ([]configUser, error) {
	names, err := s.List(ctx, configPrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []configUser
	for _, n := range names {
		cfg, err := readConfig(ctx, s, n)
		if err != nil {
			return nil, err
		}
		if cfg != nil && cfg.Provider == profile {
			out = append(out, configUser{name: n, cfg: cfg})
		}
	}
	return out, nil
}

// dropToken removes a config's token from storage and memory.
func (b *backend) dropToken(ctx context.Context, s logical.Storage, name string) error {
	return b.broker.Change(ctx, name, func() error { return s.Delete(ctx, tokenPrefix+name) })
}

const pathProfileHelpSyn = `Manage bank protocol profiles: add a bank without a new plugin release.`

const pathProfileHelpDesc = `
A profile describes a bank's token endpoint as data (JSON): the config
fields it needs, the HTTP requests that obtain a token (method, path or url,
query, headers, Basic auth, form or JSON body, templates like
{{field.client_id}}, {{step.code.code}}, {{gen.uuid}}), what counts as
success, where the token and its lifetime are in the answer, the error
fields, and the refresh request. See docs/custom-profile.md.

Write profile/<name> with profile=@file.json; the profile is validated
first and a 400 names the problem (e.g. steps[0].headers.MsgId: ...). A
config then uses it with provider=<name> and the fields it declares.
Rewriting a profile re-validates the configs that use it and drops their
tokens. A profile in use cannot be deleted. Built-in providers can be read
here as profiles (built_in: true) but not changed.
`

const pathProfileListHelpSyn = `List profiles: stored ones and the built-in providers.`

const pathProfileListHelpDesc = `Lists every profile name usable as a config's provider.`
