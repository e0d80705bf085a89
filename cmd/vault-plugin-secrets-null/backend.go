package main

import (
	"context"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const secretType = "null_token"

// constantToken is as long as the bank emulator's access tokens, so that
// responses are the same size as bankauth's.
const constantToken = "emu-rakbank-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"

type backend struct {
	*framework.Backend
	lease     bool
	expiresAt time.Time
}

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &backend{lease: true, expiresAt: time.Now().Add(time.Hour)}
	if v, ok := conf.Config["lease"]; ok {
		lease, err := strconv.ParseBool(v)
		if err != nil {
			return nil, err
		}
		b.lease = lease
	}
	if v, ok := conf.Config["ttl"]; ok {
		ttl, err := time.ParseDuration(v)
		if err != nil {
			return nil, err
		}
		b.expiresAt = time.Now().Add(ttl)
	}
	b.Backend = &framework.Backend{
		Help:        "Benchmark floor: answers token/<name> with a constant token from memory.",
		BackendType: logical.TypeLogical,
		Paths: []*framework.Path{{
			Pattern: "token/" + framework.GenericNameRegex("name"),
			Fields: map[string]*framework.FieldSchema{
				"name": {Type: framework.TypeString, Required: true, Description: "Any name."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.read},
			},
			HelpSynopsis:    "Read a constant token.",
			HelpDescription: "Reads return the same token, with a lease unless the mount option lease=false is set.",
		}},
		Secrets: []*framework.Secret{{
			Type: secretType,
			Fields: map[string]*framework.FieldSchema{
				"access_token": {Type: framework.TypeString, Description: "Constant token."},
			},
			Revoke: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
				return nil, nil
			},
		}},
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// read answers the way bankauth answers a cached token.
func (b *backend) read(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	_ = d.Get("name").(string)
	left := time.Until(b.expiresAt).Truncate(time.Second)
	data := map[string]any{
		"access_token": constantToken,
		"token_type":   "Bearer",
		"expires_in":   int64(left / time.Second),
		"expires_at":   b.expiresAt.UTC().Format(time.RFC3339),
		"scope":        "accounts",
	}
	if !b.lease {
		return &logical.Response{Data: data}, nil
	}
	resp := b.Secret(secretType).Response(data, nil)
	resp.Secret.TTL = left
	resp.Secret.MaxTTL = left
	resp.Secret.Renewable = false
	return resp, nil
}
