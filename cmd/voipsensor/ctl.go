package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/transport/manager"
)

// runCtl sends one manager API command and prints the reply: the
// equivalent of the GUI's send_manager_cmd. Host and port default to the
// configuration's managerip/managerport; -a encrypts with the configured
// key (manager_aes_key/manager_aes_iv, else the database's manager_key).
func runCtl(args []string) int {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	var host string
	fs.StringVar(&host, "H", "", "manager host (default: managerip of the configuration, 127.0.0.1)")
	fs.StringVar(&host, "host", "", "the same as -H")
	port := fs.Int("p", 0, "manager TCP port (default: managerport of the configuration, 5029)")
	sock := fs.String("s", "", "manager unix socket instead of TCP")
	useAES := fs.Bool("a", false, "encrypt the request with the configured AES key and decrypt the reply")
	cipher := fs.String("cipher", manager.DefaultCipher, "with -a: aes-128-cbc, aes-192-cbc or aes-256-cbc")
	conf := fs.String("c", "", "configuration file (manager address, AES key, database)")
	table := fs.Bool("table", false, "print listcalls/listregisters replies as a table for people (a few useful columns, fitted to the terminal)")
	columns := fs.String("columns", "", "with --table: these columns, comma-separated (callid,caller,called,start,duration,state,codec,aloss,amos,bloss,bmos,callerip,calledip for listcalls; user,state,since,expires,contact,from,rrd,ua for listregisters; or any column name of the reply)")
	allCols := fs.Bool("all", false, "with --table: every column of the reply, as sent")
	timeout := fs.Duration("timeout", 30*time.Second, "whole exchange")
	var sets setFlags
	fs.Var(&sets, "set", "override one option: -set key=value (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: voipsensor ctl [-H HOST] [-p PORT | -s SOCKET] [-a] [-c CONFIG] [--table [--columns a,b,c | --all]] 'COMMAND'")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	line := strings.TrimSpace(strings.Join(fs.Args(), " "))
	if line == "" {
		fs.Usage()
		return 2
	}
	cfg, _, warnings, err := loadConfig(*conf, sets, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor ctl:", err)
		return 2
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "voipsensor ctl: warning:", w)
	}
	c := &manager.Client{Socket: *sock, Cipher: *cipher, Timeout: *timeout}
	if c.Socket == "" {
		h, p := cfg.ManagerIP, cfg.ManagerPort
		if host != "" {
			h = host
		}
		if *port != 0 {
			p = *port
		}
		if h == "" || h == "0.0.0.0" || h == "::" {
			h = "127.0.0.1"
		}
		if p <= 0 {
			p = 5029
		}
		c.Addr = manager.ListenAddr(h, p)
	}
	if *useAES {
		k, err := ctlKey(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "voipsensor ctl:", err)
			return 1
		}
		c.Key = k
	}
	reply, err := c.Do(context.Background(), line)
	if err != nil {
		if errors.Is(err, manager.ErrNeedAES) {
			fmt.Fprintln(os.Stderr, "voipsensor ctl: the sensor needs AES: add -a (and a key: voipsensor key store)")
		} else {
			fmt.Fprintln(os.Stderr, "voipsensor ctl:", err)
		}
		return 1
	}
	name, _ := command.ParseLine(line)
	if *table && (name == "listcalls" || name == "listregisters") {
		var cols []string
		if *columns != "" {
			cols = strings.Split(*columns, ",")
		}
		out := humanTable(name, reply, cols, *allCols, terminalWidth())
		if !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		os.Stdout.WriteString(out)
		return 0
	}
	os.Stdout.Write(reply)
	return 0
}

// ctlKey is the configured AES key: manager_aes_key/manager_aes_iv, or
// the manager_key row of the configured database's system table.
func ctlKey(cfg *config.Config) (manager.Key, error) {
	if cfg.ManagerAESKey.IsSet() {
		return manager.DecodeKey(cfg.ManagerAESKey.Reveal(), cfg.ManagerAESIV.Reveal())
	}
	st, err := openStore(cfg)
	if err != nil {
		return manager.Key{}, err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	content, ok, err := st.GetSystem(ctx, manager.StoredKeyType)
	if err != nil {
		return manager.Key{}, err
	}
	if !ok {
		return manager.Key{}, fmt.Errorf("no AES key: set manager_aes_key/manager_aes_iv or run 'voipsensor key store' (database %s)", cfg.SQLDriver)
	}
	return manager.ParseStoredKey(content)
}
