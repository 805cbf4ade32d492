// Package steamoverseer holds the files the binary carries, at the top of
// the repository where operators and tests read them from disk too.
package steamoverseer

import "embed"

// SteamSchema is H2O Steam 1.1.x's schema, as far as steam-overseer uses it.
//
//go:embed testdata/steam-schema.sql
var SteamSchema string

// JettySources are the launcher and scoring war the tests and --jetty build.
//
//go:embed testdata/jetty
var JettySources embed.FS
