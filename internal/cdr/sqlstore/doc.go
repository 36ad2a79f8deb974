// Package sqlstore is the SQL [cdr.Store]: SQLite (modernc.org/sqlite, pure
// Go) and MySQL/MariaDB (go-sql-driver/mysql). It creates its schema on
// first open, one of two [Schema]s: voipsensor's own (table cdr with one
// column per [cdr.Record] field, VoIPmonitor names, and register_state), or
// the VoIPmonitor sniffer's (cdr, cdr_next, cdr_rtp, cdr_ua,
// cdr_sip_response, register_state, register_failed, with its types, NULL
// rules and, on MySQL, daily partitions) for the sniffer's GUI. Both have
// system (the manager API's AES key) and sensors.
//
// Allowed imports: internal/cdr only.
package sqlstore
