package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/grains"
)

func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", stderr)
	dataDir := fs.String("data-dir", envOr("GRAINLINE_DATA_DIR", ".grainline"), "data folder holding the dev signing key (env GRAINLINE_DATA_DIR)")
	tenant := fs.String("tenant", "demo", "tenant the token is for")
	roles := fs.String("roles", "sales", "comma-separated roles, e.g. sales,approver")
	subject := fs.String("subject", "dev-user", "the token's subject (who acts)")
	ttl := fs.Duration("ttl", 12*time.Hour, "how long the token is valid")
	pubOut := fs.String("public-key-out", "", "also write the dev key's public key (PEM) to this file, for 'serve -jwt-public-keys'")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := auth.ValidTenant(grains.TenantID(*tenant)); err != nil {
		return err
	}
	if *ttl <= 0 {
		return errors.New("-ttl must be positive")
	}
	key, err := auth.LoadOrCreateDevKey(*dataDir)
	if err != nil {
		return err
	}
	var rs []string
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			rs = append(rs, r)
		}
	}
	if *pubOut != "" {
		pem, err := auth.EncodePublicKey(key.Public().(ed25519.PublicKey))
		if err != nil {
			return err
		}
		if err := os.WriteFile(*pubOut, pem, 0o644); err != nil {
			return err
		}
	}
	tok, err := auth.Mint(key, auth.Claims{Subject: *subject, Tenant: grains.TenantID(*tenant), Roles: rs}, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
