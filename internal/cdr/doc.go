// Package cdr owns the call detail record ([Record]), the registration
// record ([Registration]), the [Store] contract for persisting them, and the
// batching [Writer] that sits between the call table and a Store.
//
// Field meanings follow VoIPmonitor's cdr and register_state tables (see
// specs/capture-quality.md §1d and §2.7). Drivers live in subpackages
// (cdr/sqlstore for SQLite and MySQL/MariaDB).
//
// Allowed imports: nothing internal. Drivers in its subpackages import only
// cdr.
package cdr
