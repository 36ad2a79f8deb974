package sharedtest

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// SchemaColumns reads shared/peers/voipmonitor/schema-columns.tsv, the real
// sniffer's database schema: per table ("## name" lines), one
// "name\ttype\tnullable\tdefault" line per column, in the schema's order.
func SchemaColumns(t testing.TB) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(Dir(t), "peers", "voipmonitor", "schema-columns.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	table := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		switch line := sc.Text(); {
		case strings.HasPrefix(line, "## "):
			table = strings.TrimPrefix(line, "## ")
		case strings.HasPrefix(line, "column_name\t"), line == "":
		default:
			out[table] = append(out[table], line)
		}
	}
	return out
}
