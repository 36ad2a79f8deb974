// Package sqlstore is the SQL [cdr.Store]: SQLite (modernc.org/sqlite, pure
// Go) and MySQL/MariaDB (go-sql-driver/mysql). It creates its schema on
// first open: table cdr (one column per [cdr.Record] field, VoIPmonitor
// names), register_state, system (the manager API's AES key) and sensors.
//
// Allowed imports: internal/cdr only.
package sqlstore
