package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/voipsensor/voipsensor/internal/cdr/sqlstore"
	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/transport/manager"
)

// runKey manages the manager API's AES key in the configured database,
// like the GUI's generate_aes_key, store_aes_key and delete_aes_key:
// the key lives in the `system` table, type manager_key, as
// {"key":"<b64>","iv":"<b64>"}; a running sensor picks it up within
// manager.DefaultKeyTTL (or at once, on a failed decryption).
func runKey(args []string) int {
	fs := flag.NewFlagSet("key", flag.ContinueOnError)
	conf := fs.String("c", "", "configuration file naming the database (sqldriver, spooldir/sqlitepath, mysql*)")
	var sets setFlags
	fs.Var(&sets, "set", "override one option: -set key=value (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: voipsensor key generate|store|delete [-c FILE] [-set key=value]...\n"+
			"  generate  print a new random key and IV (manager_aes_key/manager_aes_iv lines), store nothing\n"+
			"  store     write a new random key to the database and print it\n"+
			"  delete    remove the key from the database")
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return 2
	}
	action := args[0]
	if action == "-h" || action == "--help" || action == "help" {
		fs.Usage()
		return 0
	}
	if err := fs.Parse(args[1:]); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "voipsensor key:", err); return 1 }
	switch action {
	case "generate":
		k, err := manager.GenerateKey(nil)
		if err != nil {
			return fail(err)
		}
		fmt.Printf("manager_aes_key = %s\nmanager_aes_iv = %s\n",
			base64.StdEncoding.EncodeToString(k.Key), base64.StdEncoding.EncodeToString(k.IV))
		return 0
	case "store", "delete":
	default:
		fs.Usage()
		return 2
	}
	cfg, _, warnings, err := loadConfig(*conf, sets, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor key:", err)
		return 2
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "voipsensor key: warning:", w)
	}
	st, err := openStore(cfg)
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if action == "delete" {
		if err := st.DeleteSystem(ctx, manager.StoredKeyType); err != nil {
			return fail(err)
		}
		return 0
	}
	k, err := manager.GenerateKey(nil)
	if err != nil {
		return fail(err)
	}
	content := k.MarshalStored()
	if err := st.SetSystem(ctx, manager.StoredKeyType, content); err != nil {
		return fail(err)
	}
	fmt.Println(content)
	return 0
}

// openStore opens the configured CDR database (creating the SQLite
// file's directory like the daemon does).
func openStore(cfg *config.Config) (*sqlstore.Store, error) {
	if cfg.SQLDriver == "sqlite" {
		if err := os.MkdirAll(filepath.Dir(cfg.SQLiteFile()), 0o750); err != nil {
			return nil, err
		}
	}
	return sqlstore.Open(cfg.SQLDriver, cfg.DSN(), sqlstore.Schema(cfg.CDRSchema))
}
